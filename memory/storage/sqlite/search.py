"""The vector and structure legs over SQLite: KNN and exact cosine
(sqlite-vec), session neighbours, what ranking reads of candidates. Every
query carries the scope. The keyword legs: :mod:`memory.storage.sqlite.keywords`.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Sequence

from memory.storage.records import MemoryBrief, MemoryFilter
from memory.storage.scope import Scope
from memory.storage.sqlite import keyword_stats
from memory.storage.sqlite.db import Connection
from memory.storage.sqlite.filters import filter_sql, scope_sql
from memory.storage.sqlite.keywords import only_scope

# A scope of up to this many rows is searched by exact vector scan, not KNN.
EXACT_VECTOR_LIMIT = 2_000
# sqlite-vec's largest k.
KNN_MAX = 4_096


def similarities(
    conn: Connection, scope: Scope, blob: bytes, ids: Iterable[int]
) -> dict[int, float]:
    """Exact cosine of the packed vector ``blob`` to each of ``ids`` in the scope."""
    return {i: 1.0 - d for i, d in _distances(conn, scope, blob, ids) if d is not None}


def _distances(
    conn: Connection, scope: Scope, blob: bytes, ids: Iterable[int]
) -> list[tuple[int, float | None]]:
    """(id, cosine distance) of each of ``ids`` in the scope, in their order."""
    if keyword_stats.stats(conn, scope.readable).whole:  # every row is the scope's
        rows = conn.execute(
            "SELECT v.id, vec_distance_cosine(v.vector, ?) FROM json_each(?) j "
            "CROSS JOIN memory_vectors v ON v.id = j.value",
            [blob, json.dumps(list(ids))],
        ).fetchall()
        return [(int(r[0]), None if r[1] is None else float(r[1])) for r in rows]
    where, params = scope_sql(scope)
    rows = conn.execute(
        "SELECT v.id, vec_distance_cosine(v.vector, ?) FROM json_each(?) j "
        "CROSS JOIN memories m ON m.id = j.value CROSS JOIN memory_vectors v ON v.id = m.id "
        f"WHERE {where}",
        [blob, json.dumps(list(ids)), *params],
    ).fetchall()
    return [(int(r[0]), None if r[1] is None else float(r[1])) for r in rows]


def nearest(
    conn: Connection,
    scope: Scope,
    vector: Sequence[float],
    filters: MemoryFilter,
    *,
    k: int,
    exact: bool | None,
    blob: bytes,
) -> dict[int, float]:
    """Exact (cosine over float32) under a narrowing filter or in a small
    scope, nearest first; otherwise a bit-quantised KNN of ``k`` over
    ``memories_vec`` (its cost grows with k), whose candidates are kept only
    within the scope and filters (fetching more while too few pass) and
    re-scored exactly, in the KNN's order."""
    if k < 1 or not any(vector):
        return {}
    if exact is None:
        exact = filters.narrow or row_bound(conn, scope) <= EXACT_VECTOR_LIMIT
    if exact:
        where, params = filter_sql(scope, filters)
        rows = conn.execute(
            "SELECT m.id, vec_distance_cosine(v.vector, ?) AS d FROM memory_vectors v "
            f"JOIN memories m ON m.id = v.id WHERE {where} AND d IS NOT NULL "
            "ORDER BY d LIMIT ?",
            [blob, *params, k],
        ).fetchall()
        return {int(r[0]): 1.0 - float(r[1]) for r in rows}
    fetch = min(k, KNN_MAX)
    while True:
        found = [
            int(r[0])
            for r in conn.execute(
                "SELECT id FROM memories_vec WHERE embedding MATCH "
                "vec_quantize_binary(vec_f32(?)) AND k = ?",
                [blob, fetch],
            ).fetchall()
        ]
        if only_scope(filters):  # the scope applies inside the one query
            scored = _distances(conn, scope, blob, found)
            kept = [i for i, _ in scored]
        else:
            kept = passing(conn, scope, filters, found)
            scored = []
        if len(kept) >= k or len(found) < fetch or fetch >= KNN_MAX:
            break
        fetch = min(fetch * 4, KNN_MAX)
    if only_scope(filters):
        sims = {i: 1.0 - d for i, d in scored if d is not None}
    else:
        sims = similarities(conn, scope, blob, kept)
    if len(sims) <= k:
        return sims
    return dict(heapq.nlargest(k, sims.items(), key=lambda kv: (kv[1], -kv[0])))


def row_bound(conn: Connection, scope: Scope) -> int:
    """The highest memory id while the scope holds every row (a bound on the
    row count that costs no scan), else the scope's own row count."""
    st = keyword_stats.stats(conn, scope.readable)
    if st.whole:
        return int(conn.execute("SELECT max(id) FROM memories").fetchone()[0] or 0)
    return st.rows


def passing(conn: Connection, scope: Scope, filters: MemoryFilter, ids: Iterable[int]) -> list[int]:
    """Those of ``ids`` in the scope that pass ``filters``, in the same order."""
    return [b[0] for b in briefs(conn, scope, ids, filters)]


def briefs(
    conn: Connection, scope: Scope, ids: Iterable[int], filters: MemoryFilter
) -> list[MemoryBrief]:
    """What ranking reads of each of ``ids`` that passes (not the text), in
    the order of ``ids``."""
    where, params = filter_sql(scope, filters)
    rows: list[MemoryBrief] = conn.execute(
        "SELECT m.id, m.kind, m.conversation_id, m.created_at, m.speaker, m.importance "
        f"FROM json_each(?) j CROSS JOIN memories m ON m.id = j.value WHERE {where}",
        [json.dumps(list(ids)), *params],
    ).fetchall()
    return rows  # (INTEGER, TEXT, TEXT, TEXT, TEXT, REAL): already the record's types


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
    near_ids = {i for ids in around.values() for i in ids}
    # Neighbours share their anchor's namespace: the scope alone keeps them all.
    ok = near_ids if only_scope(filters) else set(passing(conn, scope, filters, near_ids))
    out: dict[int, list[tuple[int, int]]] = {}
    for anchor, ids in around.items():
        before = sorted((i for i in ids if i < anchor), reverse=True)
        after = sorted(i for i in ids if i > anchor)
        near = [(i, -n) for n, i in enumerate(before, start=1) if i in ok]
        near += [(i, n) for n, i in enumerate(after, start=1) if i in ok]
        out[anchor] = near
    return out
