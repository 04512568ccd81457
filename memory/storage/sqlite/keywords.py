"""The keyword legs over SQLite's FTS5 index: per-term BM25, speakers, matches.

Keyword scores use the scope's own statistics (:mod:`memory.storage.sqlite.keyword_stats`):
FTS5's ``bm25()`` counts every row of the shared index, so when other
namespaces hold rows (or deleted rows still count in FTS5's totals) the
scores are recomputed from the scope's rows, tokens and matches, bit for bit
FTS5's formula. When the scope holds every row, ``bm25()`` is used as is.

A filter that is the scope alone with ``newest`` (a broad search) is the
cheap case: the ``newest`` matches are read straight off the index, with no
join per match.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from memory.storage.records import KeywordStats, MemoryFilter
from memory.storage.scope import Scope
from memory.storage.sqlite import keyword_stats
from memory.storage.sqlite.db import Connection
from memory.storage.sqlite.filters import filter_sql, marks

# Up to this many rows of other profiles, their matches are left out one by
# one rather than each match joined to its profile (see _excluding).
OTHERS_BY_ROW = 20


def phrase(column: str, term: str) -> str:
    """A column-restricted FTS5 phrase; quoting makes user text a literal."""
    return f'{column} : "' + term.replace('"', '""') + '"'


def stats(conn: Connection, scope: Scope) -> KeywordStats:
    st = keyword_stats.stats(conn, scope.readable)
    return KeywordStats(st.rows, st.tokens)


def only_scope(filters: MemoryFilter) -> bool:
    """A filter that adds nothing to the scope (every row of it, active or not)."""
    f = filters
    return f.include_inactive and not (
        f.kinds
        or f.since
        or f.until
        or f.conversation
        or f.where
        or f.exclude_kinds
        or f.exclude_ids
        or f.exclude_messages
    )


def keyword_scores(
    conn: Connection,
    scope: Scope,
    term: str,
    filters: MemoryFilter,
    *,
    column: str,
    limit: int,
    newest: int | None,
) -> dict[int, float]:
    """{memory id: BM25}, the best ``limit``, best first (ties: newest first)."""
    if not term.strip() or limit < 1:
        return {}
    st = keyword_stats.stats(conn, scope.readable)
    match = phrase(column, term)
    bare = only_scope(filters)
    if st.whole:
        if bare and newest:
            rows = conn.execute(
                "SELECT rowid, -bm25(memories_fts) FROM memories_fts WHERE memories_fts MATCH ? "
                "ORDER BY rowid DESC LIMIT ?",
                [match, newest],
            ).fetchall()
            rows = heapq.nlargest(limit, rows, key=lambda r: float(r[1]))
            return {int(r[0]): float(r[1]) for r in rows}
        where, params = filter_sql(scope, filters)
        if newest is None:
            rows = conn.execute(
                "SELECT m.id, -bm25(memories_fts) AS s FROM memories_fts f "
                "CROSS JOIN memories m ON m.id = f.rowid WHERE memories_fts MATCH ? "
                f"AND {where} ORDER BY s DESC LIMIT ?",
                [match, *params, limit],
            ).fetchall()
            return {int(r[0]): float(r[1]) for r in rows}
        rows = conn.execute(
            "SELECT m.id, -bm25(memories_fts) FROM memories_fts f "
            "CROSS JOIN memories m ON m.id = f.rowid WHERE memories_fts MATCH ? "
            f"AND {where} ORDER BY f.rowid DESC LIMIT ?",
            [match, *params, newest],
        ).fetchall()
        rows = heapq.nlargest(limit, rows, key=lambda r: float(r[1]))
        return {int(r[0]): float(r[1]) for r in rows}
    if bare and newest and st.others <= OTHERS_BY_ROW:
        return _excluding(conn, match, limit, newest, st)
    where, params = filter_sql(scope, filters)
    rows = conn.execute(
        "SELECT f.rowid, -bm25(memories_fts), d.sz FROM memories_fts f "
        "CROSS JOIN memories m ON m.id = f.rowid "
        "CROSS JOIN memories_fts_docsize d ON d.id = f.rowid "
        f"WHERE memories_fts MATCH ? AND {where} ORDER BY f.rowid DESC LIMIT ?",
        [match, *params, newest or -1],
    ).fetchall()
    # Then the rows are all the scope's matches.
    every = bare and (newest is None or len(rows) < newest)
    scores = keyword_stats.rescore(conn, match, rows, st, len(rows) if every else None)
    return dict(heapq.nlargest(limit, scores.items(), key=lambda kv: kv[1]))


def _excluding(
    conn: Connection, match: str, limit: int, newest: int, st: keyword_stats.Stats
) -> dict[int, float]:
    """:func:`keyword_scores` of the scope alone when the other profiles hold
    few rows (or none, when only deleted rows make FTS5's totals differ):
    their matches are found row by row and left out, sparing a join per match."""
    excluded: set[int] = set()
    if st.other_profiles:
        excluded = {
            int(r[0])
            for r in conn.execute(
                "SELECT m.id FROM memories m CROSS JOIN memories_fts f ON f.rowid = m.id "
                f"WHERE m.profile IN ({marks(len(st.other_profiles))}) AND memories_fts MATCH ?",
                [*st.other_profiles, match],
            )
        }
    rows: list[Any] = conn.execute(
        "SELECT f.rowid, -bm25(memories_fts), d.sz FROM memories_fts f "
        "CROSS JOIN memories_fts_docsize d ON d.id = f.rowid "
        "WHERE memories_fts MATCH ? ORDER BY f.rowid DESC LIMIT ?",
        [match, newest + len(excluded)],
    ).fetchall()
    rows = [r for r in rows if r[0] not in excluded][:newest]
    scores = keyword_stats.rescore(conn, match, rows, st, other_hits=len(excluded))
    return dict(heapq.nlargest(limit, scores.items(), key=lambda kv: kv[1]))


def speakers(
    conn: Connection, scope: Scope, term: str, filters: MemoryFilter, limit: int
) -> list[str]:
    where, params = filter_sql(scope, filters)
    rows = conn.execute(
        "SELECT m.speaker FROM memories_fts f CROSS JOIN memories m ON m.id = f.rowid "
        f"WHERE memories_fts MATCH ? AND {where} LIMIT ?",
        [phrase("speaker", term), *params, limit],
    ).fetchall()
    return [str(r[0] or "") for r in rows]


def keyword_match(
    conn: Connection, scope: Scope, terms: Sequence[str], filters: MemoryFilter
) -> list[int]:
    terms = [t for t in terms if t.strip()]
    if not terms:
        return []
    where, params = filter_sql(scope, filters)
    match = " AND ".join('"' + t.replace('"', '""') + '"' for t in terms)
    rows = conn.execute(
        "SELECT m.id FROM memories_fts f CROSS JOIN memories m ON m.id = f.rowid "
        f"WHERE memories_fts MATCH ? AND m.profile = ? AND {where} ORDER BY m.id",
        [match, scope.writes, *params],
    ).fetchall()
    return [int(r[0]) for r in rows]
