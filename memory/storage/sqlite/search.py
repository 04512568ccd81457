"""The search legs over SQLite: per-term BM25 (FTS5), vector KNN and exact
cosine (sqlite-vec), session neighbours. Every query carries the scope.

Keyword scores use the scope's own statistics (:mod:`memory.storage.sqlite.keyword_stats`):
FTS5's ``bm25()`` counts every row of the shared index, so when other
namespaces hold rows the scores are recomputed from the scope's rows, tokens
and matches, bit for bit FTS5's formula.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Sequence

from memory.models.embed import pack
from memory.storage.records import KeywordStats, MemoryFilter
from memory.storage.scope import Scope
from memory.storage.sqlite import keyword_stats
from memory.storage.sqlite.db import Connection
from memory.storage.sqlite.filters import filter_sql, scope_sql

# A scope of up to this many rows is searched by exact vector scan, not KNN.
EXACT_VECTOR_LIMIT = 2_000
# sqlite-vec's largest k.
KNN_MAX = 4_096


def phrase(column: str, term: str) -> str:
    """A column-restricted FTS5 phrase; quoting makes user text a literal."""
    return f'{column} : "' + term.replace('"', '""') + '"'


def stats(conn: Connection, scope: Scope) -> KeywordStats:
    st = keyword_stats.stats(conn, scope.readable)
    return KeywordStats(st.rows, st.tokens)


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
    if not term.strip() or limit < 1:
        return {}
    st = keyword_stats.stats(conn, scope.readable)
    where, params = filter_sql(scope, filters)
    match = phrase(column, term)
    rows = conn.execute(
        "SELECT f.rowid, -bm25(memories_fts), d.sz FROM memories_fts f "
        "CROSS JOIN memories m ON m.id = f.rowid "
        "CROSS JOIN memories_fts_docsize d ON d.id = f.rowid "
        f"WHERE memories_fts MATCH ? AND {where} ORDER BY f.rowid DESC LIMIT ?",
        [match, *params, newest or -1],
    ).fetchall()
    if st.whole:
        scores = {int(r[0]): float(r[1]) for r in rows}
    else:
        scores = keyword_stats.rescore(conn, match, rows, st)
    return dict(heapq.nlargest(limit, scores.items(), key=lambda kv: (kv[1], kv[0])))


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


def similarities(
    conn: Connection, scope: Scope, vector: Sequence[float], ids: Iterable[int]
) -> dict[int, float]:
    where, params = scope_sql(scope)
    rows = conn.execute(
        "SELECT v.id, vec_distance_cosine(v.vector, ?) FROM json_each(?) j "
        "CROSS JOIN memories m ON m.id = j.value CROSS JOIN memory_vectors v ON v.id = m.id "
        f"WHERE {where}",
        [pack(vector), json.dumps(list(ids)), *params],
    ).fetchall()
    return {int(r[0]): 1.0 - float(r[1]) for r in rows if r[1] is not None}


def nearest(
    conn: Connection,
    scope: Scope,
    vector: Sequence[float],
    filters: MemoryFilter,
    *,
    k: int,
    exact: bool | None,
) -> dict[int, float]:
    """Exact (cosine over float32) under a narrowing filter or in a small
    scope; otherwise a bit-quantised KNN over ``memories_vec``, whose
    candidates are kept only within the scope and filters (fetching more
    while too few pass) and re-scored exactly."""
    if k < 1 or not any(vector):
        return {}
    where, params = filter_sql(scope, filters)
    if exact is None:
        exact = filters.narrow or stats(conn, scope).rows <= EXACT_VECTOR_LIMIT
    blob = pack(vector)
    if exact:
        rows = conn.execute(
            "SELECT m.id, vec_distance_cosine(v.vector, ?) AS d FROM memory_vectors v "
            f"JOIN memories m ON m.id = v.id WHERE {where} AND d IS NOT NULL "
            "ORDER BY d, m.id LIMIT ?",
            [blob, *params, k],
        ).fetchall()
        return {int(r[0]): 1.0 - float(r[1]) for r in rows}
    fetch = min(k * 2, KNN_MAX)
    while True:
        found = [
            int(r[0])
            for r in conn.execute(
                "SELECT id FROM memories_vec WHERE embedding MATCH "
                "vec_quantize_binary(vec_f32(?)) AND k = ?",
                [blob, fetch],
            ).fetchall()
        ]
        kept = passing(conn, scope, filters, found)
        if len(kept) >= k or len(found) < fetch or fetch >= KNN_MAX:
            break
        fetch = min(fetch * 4, KNN_MAX)
    sims = similarities(conn, scope, vector, kept)
    return dict(heapq.nlargest(k, sims.items(), key=lambda kv: (kv[1], -kv[0])))


def passing(conn: Connection, scope: Scope, filters: MemoryFilter, ids: Iterable[int]) -> list[int]:
    """Those of ``ids`` in the scope that pass ``filters``, in the same order."""
    ids = list(ids)
    where, params = filter_sql(scope, filters)
    rows = conn.execute(
        f"SELECT m.id FROM json_each(?) j CROSS JOIN memories m ON m.id = j.value WHERE {where}",
        [json.dumps(ids), *params],
    ).fetchall()
    ok = {int(r[0]) for r in rows}
    return [i for i in ids if i in ok]


def session_neighbours(
    conn: Connection,
    scope: Scope,
    anchors: Iterable[int],
    window: int,
    filters: MemoryFilter,
) -> dict[int, list[tuple[int, int]]]:
    """One query walks the conversation index from each anchor both ways (ids
    grow with time); the neighbours then pass the filters."""
    anchors = list(anchors)
    if not anchors or window < 1:
        return {}
    side = (
        "SELECT a.value, p.id FROM json_each(?1) a CROSS JOIN memories c ON c.id = a.value "
        "CROSS JOIN memories p ON p.id IN (SELECT q.id FROM memories q "
        "WHERE q.conversation_id = c.conversation_id AND q.kind = 'message' "
        "AND q.profile = c.profile AND q.id {op} c.id ORDER BY q.id {order} LIMIT ?2) "
        "WHERE c.kind = 'message' AND c.profile IN (SELECT value FROM json_each(?3))"
    )
    pairs = conn.execute(
        side.format(op="<", order="DESC") + " UNION ALL " + side.format(op=">", order="ASC"),
        [json.dumps(anchors), window, json.dumps(list(scope.readable))],
    ).fetchall()
    around: dict[int, list[int]] = {}
    for anchor, other in pairs:
        around.setdefault(int(anchor), []).append(int(other))
    ok = set(passing(conn, scope, filters, {i for ids in around.values() for i in ids}))
    out: dict[int, list[tuple[int, int]]] = {}
    for anchor, ids in around.items():
        before = sorted((i for i in ids if i < anchor), reverse=True)
        after = sorted(i for i in ids if i > anchor)
        near = [(i, -n) for n, i in enumerate(before, start=1) if i in ok]
        near += [(i, n) for n, i in enumerate(after, start=1) if i in ok]
        out[anchor] = near
    return out
