"""Embedders: one protocol, two offline ones and provider models.

The default, ``minilm-static-256`` (:mod:`memory.models.static_embed`), needs no model
and no network: word-piece vectors distilled once from a sentence transformer
and shipped with mem, so "exercise" finds "yoga" without a single keyword in
common. ``hash-N`` is the spelling-only fallback (and what databases made before
the static embedder still use): word unigrams, word bigrams and character
trigrams are hashed (signed, CRC32, so the same text gives the same vector in
every process) into a fixed dimension and L2-normalised; it pairs with BM25 to
catch morphology and spelling variants that keywords miss. Provider models go
through ``memory.models.llm.embed`` (litellm), imported lazily.
"""

from __future__ import annotations

import math
import zlib
from array import array
from collections.abc import Callable, Sequence
from typing import Protocol

from memory.errors import UsageError
from memory.text import STOPWORDS, stem, words

DEFAULT_EMBEDDER = "minilm-static-256"
_TOKEN_CACHE = 200_000  # words whose features one HashingEmbedder keeps
# A word's stem, its (slot, signed weight), and those of its character trigrams.
_Token = tuple[str, tuple[int, float], tuple[tuple[int, float], ...]]


class Embedder(Protocol):
    """What retrieval needs from an embedding model."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class HashingEmbedder:
    """Deterministic feature hashing; see the module docstring for why."""

    def __init__(self, dim: int = 256) -> None:
        if dim < 8 or dim % 8:
            raise UsageError(f"Invalid hashing dimension {dim}: use a multiple of 8, e.g. 256.")
        self._dim = dim
        self._tokens: dict[str, _Token] = {}

    @property
    def name(self) -> str:
        return f"hash-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _slot(self, feature: str, weight: float) -> tuple[int, float]:
        """Where a feature lands and with which signed weight (CRC32 is the
        same in every process, unlike ``hash``)."""
        h = zlib.crc32(feature.encode("utf-8"))
        return h % self._dim, weight if (h >> 31) & 1 else -weight

    def _token(self, word: str) -> _Token:
        """A word's stem, its own slot and its character-trigram slots. Words
        repeat across texts, so this is cached: embedding is mostly lookups."""
        cached = self._tokens.get(word)
        if cached is None:
            tok = stem(word)
            padded = f"<{tok}>"
            grams = tuple(self._slot("#" + padded[i : i + 3], 0.25) for i in range(len(padded) - 2))
            cached = (tok, self._slot(tok, 1.0), grams)
            if len(self._tokens) < _TOKEN_CACHE:
                self._tokens[word] = cached
        return cached

    def embed_one(self, text: str) -> list[float]:
        """Unigrams (weight 1), bigrams (0.5) and character trigrams (0.25)
        of the stemmed non-stop-words, added in that order, L2-normalised."""
        toks = [self._token(w) for w in words(text) if w not in STOPWORDS]
        vec = [0.0] * self._dim
        for _, (slot, value), _ in toks:
            vec[slot] += value
        for (a, _, _), (b, _, _) in zip(toks, toks[1:], strict=False):
            slot, value = self._slot(a + " " + b, 0.5)
            vec[slot] += value
        for _, _, grams in toks:
            for slot, value in grams:
                vec[slot] += value
        norm = math.sqrt(sum(v * v for v in vec))
        if norm == 0.0:
            return vec
        return [v / norm for v in vec]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.embed_one(t) for t in texts]


class LiteLLMEmbedder:
    """A provider embedding model through litellm (imported only when used).

    Its endpoint is ``api_base`` when given, else the config file's ``api_base`` (the
    one setting for self-hosted endpoints), read on the first call."""

    def __init__(self, model: str, dim: int | None = None, *, api_base: str | None = None) -> None:
        self.model = model
        self._dim = dim
        self._api_base = api_base

    @property
    def api_base(self) -> str | None:
        if self._api_base is None:
            from memory.config import load_config

            self._api_base = load_config().api_base or ""
        return self._api_base or None

    @property
    def name(self) -> str:
        return f"litellm:{self.model}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = len(self.embed(["dimension probe"])[0])
        return self._dim

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        from memory.models.llm import embed

        out: list[list[float]] = []
        for start in range(0, len(texts), 256):
            out += embed(self.model, list(texts[start : start + 256]), api_base=self.api_base)
        if out and self._dim is None:
            self._dim = len(out[0])
        return out


_HELPERS: dict[str, object] = {}  # name -> the one-name plugin register_embedder made


def register_embedder(name: str, factory: Callable[[], Embedder]) -> None:
    """Make ``name`` resolve to ``factory()`` in :func:`get_embedder`: a one-name
    plugin on the ``register_embedders`` hook (tests that need an embedder which
    blocks or fails on cue, programs that bring their own)."""
    from memory.hookspecs import Register, hookimpl
    from memory.plugins import register_plugin

    class OneEmbedder:
        @hookimpl
        def register_embedders(self, register: Register) -> None:
            register(name, factory)

    unregister_embedder(name)
    plugin = OneEmbedder()
    register_plugin(plugin, name=f"embedder:{name}")
    _HELPERS[name] = plugin


def unregister_embedder(name: str) -> None:
    plugin = _HELPERS.pop(name, None)
    if plugin is not None:
        from memory.plugins import unregister_plugin

        unregister_plugin(plugin)


def get_embedder(name: str | None, *, dim: int | None = None) -> Embedder:
    """``minilm-static-256`` (default), ``hash-N``, a plugin's name, or any
    litellm model name (``litellm:text-embedding-3-small`` or just the name).

    Registered names come first (:mod:`memory.plugins`; the built-ins are a
    plugin too); installed plugins are read only for a name that is not a
    built-in one."""
    from memory import plugins

    chosen = (name or DEFAULT_EMBEDDER).strip()
    factory = plugins.lookup("embedder", chosen, installed=False)
    if factory is None and not chosen.startswith("hash-"):
        factory = plugins.lookup("embedder", chosen)
    if factory is not None:
        embedder: Embedder = factory()
        return embedder
    if chosen.startswith("hash-"):
        try:
            size = int(chosen.removeprefix("hash-"))
        except ValueError:
            builtin = ["minilm-static-256", "hash-256"]
            others = [n for n in plugins.known_names("embedder") if n not in builtin]
            raise UsageError(
                f"Unknown embedder {chosen!r}: use {', '.join(builtin + others)} or a litellm "
                "embedding model name."
            ) from None
        return HashingEmbedder(size)
    return LiteLLMEmbedder(chosen.removeprefix("litellm:"), dim)


def pack(vector: Sequence[float]) -> bytes:
    """float32 little-endian bytes, the layout sqlite-vec reads."""
    return array("f", vector).tobytes()
