"""BM25 with the statistics of one scope, not of the whole file.

All profiles share one FTS5 index, and FTS5's ``bm25()`` counts rows, tokens
and matches over all of it: one profile's notes would change another's
ranking (and so reveal themselves). ``fts_stats`` keeps the rows and tokens of
each profile (kept by :func:`count_row` on every index write, rebuilt by
:func:`rebuild`); a search whose scope holds every row of the index uses
``bm25()`` as is, otherwise :func:`rescore` recomputes FTS5's own formula
(``fts5_aux.c``: k1 1.2, b 0.75, IDF floored at 1e-6) from the scope's rows,
tokens and matches. A row's phrase frequency is not exposed by FTS5; it is
recovered exactly from ``bm25()`` and the row's length (``_docsize``), so a
scope holding every row scores bit for bit as ``bm25()`` does.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memory.storage.sqlite.db import Connection

K1 = 1.2
B = 0.75
IDF_FLOOR = 1e-6


def varints(blob: bytes) -> list[int]:
    """FTS5's varints (SQLite's format: 7 bits a byte, big-endian, the ninth
    byte whole), as in ``_docsize.sz`` and the averages record."""
    out: list[int] = []
    i = 0
    while i < len(blob):
        value = 0
        for n in range(9):
            byte = blob[i]
            i += 1
            if n == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        out.append(value)
    return out


def row_tokens(conn: Connection, memory_id: int) -> int | None:
    """Tokens of one indexed row, all columns (FTS5's ``D``); None if not indexed."""
    row = conn.execute("SELECT sz FROM memories_fts_docsize WHERE id = ?", [memory_id]).fetchone()
    return None if row is None else sum(varints(bytes(row[0] or b"")))


def count_row(conn: Connection, memory_id: int, sign: int) -> None:
    """Add (``sign`` 1, after the FTS insert) or remove (-1, before the FTS
    delete) one indexed row in its profile's statistics."""
    row = conn.execute("SELECT profile FROM memories WHERE id = ?", [memory_id]).fetchone()
    tokens = row_tokens(conn, memory_id)
    if row is None or tokens is None:
        return
    conn.execute(
        "INSERT INTO fts_stats(profile, rows, tokens) VALUES (?, ?, ?) ON CONFLICT(profile) "
        "DO UPDATE SET rows = rows + excluded.rows, tokens = tokens + excluded.tokens",
        [row[0], sign, sign * tokens],
    )


def rebuild(conn: Connection) -> None:
    """Recount every profile's rows and tokens from the index (a migration, or
    a database filled by plain SQL such as ``bench/search.py``)."""
    totals: dict[str, list[int]] = {}
    for profile, sz in conn.execute(
        "SELECT m.profile, d.sz FROM memories_fts_docsize d JOIN memories m ON m.id = d.id"
    ):
        entry = totals.setdefault(profile, [0, 0])
        entry[0] += 1
        entry[1] += sum(varints(bytes(sz or b"")))
    conn.execute("DELETE FROM fts_stats")
    conn.executemany(
        "INSERT INTO fts_stats(profile, rows, tokens) VALUES (?, ?, ?)",
        [(p, r, t) for p, (r, t) in totals.items()],
    )


@dataclass(frozen=True)
class Stats:
    """Rows and tokens of the index and of one scope (a profile and ``system``)."""

    all_rows: int
    all_tokens: int
    rows: int
    tokens: int
    profiles: tuple[str, ...]
    others: int = 0  # live rows of profiles outside the scope
    other_profiles: tuple[str, ...] = ()

    @property
    def whole(self) -> bool:
        """The scope holds every row: ``bm25()`` is already the scope's own."""
        return self.rows == self.all_rows and self.tokens == self.all_tokens


# The last statistics read on each connection, with what says whether they still
# hold: the file's data_version (another connection committed) and the
# connection's own change count. Searches ask for them once per term.
_memo: weakref.WeakKeyDictionary[Any, tuple[tuple[int, int], tuple[str, ...], Stats]] = (
    weakref.WeakKeyDictionary()
)


def stats(conn: Connection, profiles: Sequence[str]) -> Stats:
    """The statistics of the index and of ``profiles``; read again only when
    the file changed (not inside a transaction, which may yet roll back)."""
    if conn.in_transaction:
        return _read(conn, profiles)
    version = (int(conn.execute("PRAGMA data_version").fetchone()[0]), int(conn.total_changes))
    key = tuple(profiles)
    hit = _memo.get(conn)
    if hit is not None and hit[0] == version and hit[1] == key:
        return hit[2]
    st = _read(conn, key)
    _memo[conn] = (version, key, st)
    return st


def _read(conn: Connection, profiles: Sequence[str]) -> Stats:
    block = conn.execute("SELECT block FROM memories_fts_data WHERE id = 1").fetchone()
    numbers = varints(bytes(block[0])) if block and block[0] else [0]
    rows = tokens = others = 0
    other_profiles: list[str] = []
    for profile, n, t in conn.execute("SELECT profile, rows, tokens FROM fts_stats"):
        if profile in profiles:
            rows, tokens = rows + int(n), tokens + int(t)
        elif n > 0:
            others += int(n)
            other_profiles.append(profile)
    return Stats(
        numbers[0], sum(numbers[1:]), rows, tokens, tuple(profiles), others, tuple(other_profiles)
    )


def _idf(rows: int, hits: int) -> float:
    if rows <= 0:
        return IDF_FLOOR
    # The scope's rows and the term's hits are read by two statements: a write
    # committed between them (another process) can make hits exceed rows.
    hits = min(hits, rows)
    idf = math.log((rows - hits + 0.5) / (hits + 0.5))
    return IDF_FLOOR if idf <= 0.0 else idf


def _length_norm(length: float, avgdl: float) -> float:
    return K1 * (1 - B + B * length / avgdl)


def rescore(
    conn: Connection,
    phrase: str,
    rows: Sequence[tuple[Any, ...]],
    st: Stats,
    scope_hits: int | None = None,
    other_hits: int | None = None,
) -> dict[int, float]:
    """The scope's BM25 of ``phrase`` for ``rows`` of (id, -bm25(), _docsize.sz).

    ``scope_hits``: the scope's rows that match, or ``other_hits``: the other
    profiles' rows that match, when the caller knows it."""
    if not rows:
        return {}
    all_hits = conn.execute(
        "SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?", [phrase]
    ).fetchone()[0]
    if scope_hits is None and other_hits is not None:
        scope_hits = int(all_hits) - other_hits
    if scope_hits is None and st.others == 0:
        scope_hits = int(all_hits)  # every live row is the scope's
    if scope_hits is None:
        marks = ",".join("?" * len(st.profiles))
        scope_hits = conn.execute(
            "SELECT count(*) FROM memories_fts f CROSS JOIN memories m ON m.id = f.rowid "
            f"WHERE memories_fts MATCH ? AND m.profile IN ({marks})",
            [phrase, *st.profiles],
        ).fetchone()[0]
    all_idf = _idf(st.all_rows, int(all_hits))
    idf = _idf(st.rows, int(scope_hits))
    all_avgdl = st.all_tokens / st.all_rows if st.all_rows else 1.0
    avgdl = st.tokens / st.rows if st.rows and st.tokens else 1.0
    out: dict[int, float] = {}
    top = K1 + 1.0
    for mid, score, sz in rows:
        # One byte a column while each holds fewer than 128 tokens: their sum.
        sz = sz or b""
        length = float(sum(sz) if sz.isascii() else sum(varints(sz)))
        # score = idf * f (k1 + 1) / (f + norm): solve for the frequency f.
        g = score / all_idf
        freq = (
            float(max(1, round(g * _length_norm(length, all_avgdl) / (top - g))))
            if g < top
            else 1e9
        )
        # FTS5's own expression, term for term, so a whole scope gives bm25() exactly.
        out[mid] = idf * ((freq * (K1 + 1.0)) / (freq + K1 * (1 - B + B * length / avgdl)))
    return out
