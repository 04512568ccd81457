"""Embedders: one protocol, an offline default and provider models.

The default needs no model and no network: word unigrams, word bigrams and
character trigrams are hashed (signed, CRC32, so the same text gives the same
vector in every process) into a fixed dimension and L2-normalised. It pairs
with BM25 to catch morphology and spelling variants that keywords miss.
Provider models go through ``memory.llm.embed`` (litellm), imported lazily.
"""

from __future__ import annotations

import math
import zlib
from array import array
from collections.abc import Sequence
from typing import Protocol

from .errors import UsageError
from .text import STOPWORDS, stem, words

DEFAULT_EMBEDDER = "hash-256"


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

    @property
    def name(self) -> str:
        return f"hash-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _features(self, text: str) -> list[tuple[str, float]]:
        toks = [stem(w) for w in words(text) if w not in STOPWORDS]
        feats: list[tuple[str, float]] = [(t, 1.0) for t in toks]
        feats += [(a + " " + b, 0.5) for a, b in zip(toks, toks[1:], strict=False)]
        for tok in toks:
            padded = f"<{tok}>"
            feats += [("#" + padded[i : i + 3], 0.25) for i in range(len(padded) - 2)]
        return feats

    def embed_one(self, text: str) -> list[float]:
        vec = [0.0] * self._dim
        for feat, weight in self._features(text):
            h = zlib.crc32(feat.encode("utf-8"))
            sign = 1.0 if (h >> 31) & 1 else -1.0
            vec[h % self._dim] += sign * weight
        norm = math.sqrt(sum(v * v for v in vec))
        if norm == 0.0:
            return vec
        return [v / norm for v in vec]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.embed_one(t) for t in texts]


class LiteLLMEmbedder:
    """A provider embedding model through litellm (imported only when used)."""

    def __init__(self, model: str, dim: int | None = None) -> None:
        self.model = model
        self._dim = dim

    @property
    def name(self) -> str:
        return f"litellm:{self.model}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = len(self.embed(["dimension probe"])[0])
        return self._dim

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        from .llm import embed

        out: list[list[float]] = []
        for start in range(0, len(texts), 256):
            out += embed(self.model, list(texts[start : start + 256]))
        if out and self._dim is None:
            self._dim = len(out[0])
        return out


def get_embedder(name: str | None, *, dim: int | None = None) -> Embedder:
    """``hash-256`` (default), ``hash-N``, or any litellm model name
    (``litellm:text-embedding-3-small`` or just the model name)."""
    chosen = (name or DEFAULT_EMBEDDER).strip()
    if chosen.startswith("hash-"):
        try:
            size = int(chosen.removeprefix("hash-"))
        except ValueError:
            raise UsageError(
                f"Unknown embedder {chosen!r}: use hash-256 or a litellm embedding model name."
            ) from None
        return HashingEmbedder(size)
    return LiteLLMEmbedder(chosen.removeprefix("litellm:"), dim)


def pack(vector: Sequence[float]) -> bytes:
    """float32 little-endian bytes, the layout sqlite-vec reads."""
    return array("f", vector).tobytes()
