"""The offline semantic embedder: static word-piece vectors distilled from MiniLM.

The hashing embedder only knows spelling, so "What exercise does Sam do?" never
finds "I started a yoga class". A sentence transformer would, but running one on
every stored memory costs tens of milliseconds a text on this kind of CPU (and a
model download). The middle way is model2vec's: each word piece of
all-MiniLM-L6-v2's vocabulary was put through the transformer once, offline, and
the resulting table ships with mem (``memory/data``, 7.9 MB, made by
``tools/distill_embedder.py``; the model is Apache-2.0). A text's vector is the
sum of its pieces' vectors, L2-normalised: a few microseconds of lookups, no
model, no network, the same vector in every process.

Tokenising follows BERT's uncased WordPiece exactly (lower case, accents
stripped, punctuation split off, greedy longest match with ``##`` pieces), so the
pieces are the ones the table was distilled for. Stop-words are left out first:
they carry no topic, and summing them would pull every text towards the same
point. The rows already carry a Zipf weight (rarer pieces weigh more).

Single texts (a query, one ``remember``) are embedded in pure Python, so a cold
``mem search`` never imports numpy; batches (an import, ``mem add``) use numpy
when it is installed.

The same table gives each whole word its nearest words ("exercise": workout,
gym, jogging…), precomputed by the tool into ``static-minilm-neighbours.bin``:
:func:`neighbours` lets a search also look up, at a fraction of the weight,
the words a memory might use instead of the query's.
"""

from __future__ import annotations

import struct
import threading
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

from memory.errors import UsageError
from memory.text import STOPWORDS, words

NAME = "minilm-static-256"
TABLE_FILE = "static-minilm-256.bin"
VOCAB_FILE = "static-minilm-vocab.txt"
MAGIC = b"MEMSTAT1"
NEIGHBOUR_FILE = "static-minilm-neighbours.bin"
NEIGHBOUR_MAGIC = b"MEMNEIG1"
NO_NEIGHBOUR = 0xFFFF
MAX_WORD_CHARS = 100  # longer "words" are [UNK] in BERT, and so here
NUMPY_BATCH = 16  # from this many texts on, numpy (when installed) does the sums
_lock = threading.Lock()


class _Table:
    """The distilled table: a vocabulary and one int8 row with a float scale per piece."""

    def __init__(self, names: list[str], rows: int, dim: int, blob: bytes) -> None:
        self.names = names
        self.vocab = {name: i for i, name in enumerate(names)}
        self.rows = rows
        self.dim = dim
        self.blob = blob
        header = len(MAGIC) + 8
        self.scales = struct.unpack_from(f"<{rows}f", blob, header)
        self.offset = header + 4 * rows
        self._row = struct.Struct(f"{dim}b")

    def row(self, piece: int) -> tuple[int, ...]:
        return self._row.unpack_from(self.blob, self.offset + piece * self.dim)


_table: _Table | None = None
_neighbours: tuple[int, bytes] | None = None  # (neighbours per piece, the file)


def _data_file(name: str) -> bytes:
    try:
        return (resources.files("memory") / "data" / name).read_bytes()
    except OSError as exc:
        raise UsageError(
            f"The offline embedder's table is missing ({exc}): reinstall mem, or "
            "use --embedder hash-256."
        ) from None


def _load() -> _Table:
    global _table
    if _table is None:
        with _lock:
            if _table is None:
                blob = _data_file(TABLE_FILE)
                names = _data_file(VOCAB_FILE).decode("utf-8").splitlines()
                if blob[: len(MAGIC)] != MAGIC:
                    raise UsageError(
                        f"The offline embedder's table {TABLE_FILE} is damaged: reinstall mem."
                    )
                rows, dim = struct.unpack_from("<II", blob, len(MAGIC))
                if rows != len(names) or len(blob) != len(MAGIC) + 8 + rows * (4 + dim):
                    raise UsageError(
                        f"The offline embedder's table {TABLE_FILE} does not match its "
                        "vocabulary: reinstall mem."
                    )
                _table = _Table(names, rows, dim, blob)
    return _table


def _is_punctuation(char: str) -> bool:
    """BERT's rule: ASCII symbols count as punctuation, and so does Unicode class P."""
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


# CJK ideographs, which BERT tokenises one character at a time.
_CJK = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK)


def _basic(word: str) -> list[str]:
    """One lower-cased word without accents, split at punctuation and around CJK
    ideographs (BERT's BasicTokenizer)."""
    text = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
    out: list[str] = []
    current: list[str] = []
    for char in text:
        if _is_punctuation(char) or _is_cjk(char):
            if current:
                out.append("".join(current))
                current = []
            out.append(char)
        else:
            current.append(char)
    if current:
        out.append("".join(current))
    return out


def _wordpiece(token: str, vocab: dict[str, int]) -> list[int]:
    """Greedy longest-match-first pieces of one token; [] when it cannot be split (BERT
    then says [UNK], which carries nothing)."""
    if len(token) > MAX_WORD_CHARS:
        return []
    pieces: list[int] = []
    start = 0
    while start < len(token):
        end = len(token)
        found = None
        while start < end:
            piece = token[start:end] if start == 0 else "##" + token[start:end]
            found = vocab.get(piece)
            if found is not None:
                break
            end -= 1
        if found is None:
            return []
        pieces.append(found)
        start = end
    return pieces


@lru_cache(maxsize=100_000)
def _word_pieces(word: str) -> tuple[int, ...]:
    """Word pieces of one word (cached: words repeat across texts)."""
    vocab = _load().vocab
    return tuple(p for token in _basic(word) for p in _wordpiece(token, vocab))


def pieces(text: str) -> list[int]:
    """The word-piece ids of a text's non-stop-words, in order."""
    return [p for w in words(text) if w not in STOPWORDS for p in _word_pieces(w)]


def neighbours(word: str, k: int, min_similarity: float) -> list[tuple[str, float]]:
    """Up to ``k`` whole words nearest to ``word`` in the table, with their cosine
    similarity (at least ``min_similarity``), most similar first; [] for a word that
    is not one piece of the vocabulary."""
    global _neighbours
    table = _load()
    piece = table.vocab.get(word)
    if piece is None:
        return []
    if _neighbours is None:
        with _lock:
            if _neighbours is None:
                blob = _data_file(NEIGHBOUR_FILE)
                rows, per = struct.unpack_from("<II", blob, len(NEIGHBOUR_MAGIC))
                if blob[: len(NEIGHBOUR_MAGIC)] != NEIGHBOUR_MAGIC or rows != table.rows:
                    raise UsageError(
                        f"The offline embedder's {NEIGHBOUR_FILE} does not match its table: "
                        "reinstall mem."
                    )
                _neighbours = per, blob
    per, blob = _neighbours
    header = len(NEIGHBOUR_MAGIC) + 8
    ids = struct.unpack_from(f"<{per}H", blob, header + 2 * per * piece)
    sims = blob[header + 2 * per * table.rows + per * piece :][:per]
    return [
        (table.names[i], sim / 250)
        for i, sim in list(zip(ids, sims, strict=True))[:k]
        if i != NO_NEIGHBOUR and sim / 250 >= min_similarity
    ]


class StaticEmbedder:
    """Sum of distilled word-piece vectors; see the module docstring for why."""

    @property
    def name(self) -> str:
        return NAME

    @property
    def dim(self) -> int:
        return _load().dim

    def embed_one(self, text: str) -> list[float]:
        table = _load()
        acc = [0.0] * table.dim
        for piece in pieces(text):
            scale = table.scales[piece]
            acc = [a + scale * r for a, r in zip(acc, table.row(piece), strict=True)]
        norm = sum(a * a for a in acc) ** 0.5
        return [a / norm for a in acc] if norm else acc

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if len(texts) >= NUMPY_BATCH:
            try:
                import numpy
            except ImportError:  # pragma: no cover - numpy comes with litellm
                pass
            else:
                return _embed_numpy(numpy, texts)
        return [self.embed_one(t) for t in texts]


def _embed_numpy(np: Any, texts: Sequence[str]) -> list[list[float]]:
    """The same sums as :meth:`StaticEmbedder.embed_one`, vectorised."""
    table = _load()
    rows = np.frombuffer(table.blob, dtype=np.int8, offset=table.offset).reshape(
        table.rows, table.dim
    )
    scales = np.asarray(table.scales, dtype=np.float64)
    out: list[list[float]] = []
    for text in texts:
        ids = pieces(text)
        if not ids:
            out.append([0.0] * table.dim)
            continue
        vec = scales[ids] @ rows[ids].astype(np.float64)
        norm = float(np.sqrt(vec @ vec))
        out.append((vec / norm).tolist() if norm else vec.tolist())
    return out
