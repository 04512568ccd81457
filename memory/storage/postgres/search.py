"""The search legs over PostgreSQL: per-term BM25 from the scope's own
statistics, pgvector KNN re-scored exactly, session neighbours.

BM25 is FTS5's formula (k1 1.2, b 0.75, IDF floored at 1e-6), as the SQLite
backend computes it: N and the average length from ``keyword_stats`` (rows and
words of the readable namespaces, kept by a trigger), the document frequency
from the GIN index over readable rows only, each row's phrase frequency from
the positions in its ``tsv`` and its length from ``tokens``. ``ts_rank``
knows no document frequency, and a BM25 extension keeps statistics over every
namespace, which would let one profile's rows move another's scores.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Sequence

from pgvector import Vector

from ...errors import UsageError
from ..protocol import Column
from ..records import KeywordStats, MemoryFilter
from ..scope import Scope
from .base import Base
from .filters import filter_sql, scope_sql, storable

K1, B, IDF_FLOOR = 1.2, 0.75, 1e-6
# A scope of up to this many rows is searched by exact scan, not the HNSW index.
EXACT_VECTOR_LIMIT = 2_000
KNN_MAX = 1_000  # pgvector's largest hnsw.ef_search
_WEIGHT = {"content": "A", "speaker": "B"}


def idf_sql(df: str) -> str:
    """CTEs ``st`` (N and total length over the readable namespaces: one
    parameter), ``df`` (``df``: a query counting the matches) and ``k``
    (n, FTS5's IDF floored at 1e-6, the average length)."""
    return (
        "st AS (SELECT coalesce(sum(rows), 0)::float8 AS n, "
        "coalesce(sum(tokens), 0)::float8 AS t FROM keyword_stats WHERE profile = ANY(%s)), "
        f"df AS ({df}), "
        "i AS (SELECT st.n, st.t, ln((greatest(st.n - df.d, 0) + 0.5) / (df.d + 0.5)) AS x "
        "FROM st, df), "
        f"k AS (SELECT n, CASE WHEN x <= 0 THEN {IDF_FLOOR} ELSE x END AS idf, "
        "CASE WHEN t > 0 AND n > 0 THEN t / n ELSE 1 END AS avgdl FROM i)"
    )


_LEXEME = re.compile(r"'((?:[^']|'')*)'(?::([0-9A-D,]+))?")


def positions(tsv: str) -> dict[str, list[tuple[int, str]]]:
    """A tsvector's text form as lexeme -> [(position, weight)]."""
    out: dict[str, list[tuple[int, str]]] = {}
    for lexeme, spots in _LEXEME.findall(tsv):
        where = out.setdefault(lexeme.replace("''", "'"), [])
        for spot in spots.split(",") if spots else []:
            number = spot.rstrip("ABCD")
            where.append((int(number), spot[len(number) :] or "D"))
    return out


def tsquery(phrase: list[tuple[int, str]], weight: str) -> str:
    """The phrase (offset, lexeme) as a tsquery of one column's weight:
    ``'water':A <2> 'bill':A`` (the lexemes are stemmed already)."""
    parts: list[str] = []
    last = phrase[0][0]
    for offset, lexeme in phrase:
        if parts:
            parts.append(f"<{offset - last}>")
        quoted = lexeme.replace("\\", "\\\\").replace("'", "''")
        parts.append(f"'{quoted}':{weight}")
        last = offset
    return " ".join(parts)


def phrase_count(phrase: list[tuple[int, str]], row: str, weight: str) -> int:
    """How often the phrase (offset, lexeme) occurs in a row, in one column."""
    spots = positions(row)
    at = {lex: {p for p, w in spots.get(lex, []) if w == weight} for _, lex in phrase}
    first_off, first = phrase[0]
    return sum(
        1
        for start in at[first]
        if all(start - first_off + off in at[lex] for off, lex in phrase[1:])
    )


class SearchMixin(Base):
    def keyword_stats(self, scope: Scope) -> KeywordStats:
        self.check(scope)
        row = self.x(
            "SELECT coalesce(sum(rows), 0), coalesce(sum(tokens), 0) FROM keyword_stats "
            "WHERE profile = ANY(%s)",
            [list(scope.readable)],
        ).fetchone()
        assert row is not None
        return KeywordStats(int(row[0]), int(row[1]))

    def keyword_scores(
        self,
        scope: Scope,
        term: str,
        filters: MemoryFilter,
        *,
        column: Column = "content",
        limit: int = 50,
        newest: int | None = None,
    ) -> dict[int, float]:
        if not term.strip() or limit < 1:
            return {}
        self.check(scope)
        lexed = self.x("SELECT to_tsvector('english', %s)::text", [term]).fetchone()
        phrase = sorted(
            (p, lex) for lex, spots in positions(str(lexed[0] if lexed else "")).items()
            for p, _ in spots
        )  # fmt: skip
        if not phrase:
            return {}
        query = tsquery(phrase, _WEIGHT[column])
        readable = list(scope.readable)
        where, params = filter_sql(scope, filters)
        if len(phrase) == 1:
            # One word: one statement, one scan of the readable matches (df),
            # of which those passing the filters are scored and ranked here.
            rows = self.x(
                "WITH hit AS MATERIALIZED (SELECT m.id, m.tokens, m.tsv, "
                f"({where}) AS ok FROM memories m WHERE m.profile = ANY(%s) "
                "AND m.tsv @@ %s::tsquery), "
                + idf_sql("SELECT count(*)::float8 AS d FROM hit")
                + " SELECT r.id, k.idf * r.f * %s / (r.f + %s * (1 - %s + %s * r.tokens "
                "/ k.avgdl)) AS s FROM k, (SELECT c.id, c.tokens, greatest(1, (SELECT count(*) "
                "FROM unnest(c.tsv) u CROSS JOIN LATERAL unnest(u.weights) w "
                "WHERE u.lexeme = %s AND w = %s)) AS f FROM (SELECT id, tokens, tsv FROM hit "
                "WHERE ok ORDER BY id DESC LIMIT %s) c OFFSET 0) r "
                "WHERE k.n > 0 ORDER BY s DESC, r.id DESC LIMIT %s",
                [*params, readable, query, readable, K1 + 1.0, K1, B, B, phrase[0][1],
                 _WEIGHT[column], newest, limit],
            ).fetchall()  # fmt: skip
            return {int(r[0]): float(r[1]) for r in rows}
        # A phrase: N, length and df from one statement (one snapshot: a writer
        # committing in between could make df exceed N), positions counted here.
        matches = "SELECT count(*)::float8 AS d FROM memories m WHERE m.profile = ANY(%s) "
        stats = self.x(
            "WITH "
            + idf_sql(matches + "AND m.tsv @@ %s::tsquery")
            + " SELECT n, idf, avgdl FROM k",
            [readable, readable, query],
        ).fetchone()
        if stats is None or not stats[0]:
            return {}
        idf, avgdl = float(stats[1]), float(stats[2])
        scores: dict[int, float] = {}
        for memory_id, length, tsv in self.x(
            f"SELECT m.id, m.tokens, m.tsv::text FROM memories m WHERE {where} "
            "AND m.tsv @@ %s::tsquery ORDER BY m.id DESC LIMIT %s",
            [*params, query, newest],
        ).fetchall():
            freq = max(phrase_count(phrase, str(tsv), _WEIGHT[column]), 1)
            norm = K1 * (1 - B + B * int(length) / avgdl)
            scores[int(memory_id)] = idf * (freq * (K1 + 1.0)) / (freq + norm)
        return dict(heapq.nlargest(limit, scores.items(), key=lambda kv: (kv[1], kv[0])))

    def keyword_match(self, scope: Scope, terms: Sequence[str], filters: MemoryFilter) -> list[int]:
        self.check(scope)
        terms = [t for t in terms if t.strip()]
        if not terms:
            return []
        where, params = filter_sql(scope, filters)
        match = " AND ".join("m.tsv @@ phraseto_tsquery('english', %s)" for _ in terms)
        rows = self.x(
            f"SELECT m.id FROM memories m WHERE m.profile = %s AND {where} AND {match} "
            "ORDER BY m.id",
            [scope.writes, *params, *terms],
        ).fetchall()
        return [int(r[0]) for r in rows]

    def similarities(
        self, scope: Scope, vector: Sequence[float], ids: Iterable[int]
    ) -> dict[int, float]:
        self.check(scope)
        q = self._query_vector(vector)
        where, params = scope_sql(scope)
        rows = self.x(
            "SELECT m.id, 1 - (v.embedding <=> %s) FROM memories m "
            f"JOIN memory_vectors v ON v.id = m.id WHERE m.id = ANY(%s) AND {where}",
            [q, storable(ids), *params],
        ).fetchall()
        return {int(r[0]): float(r[1]) for r in rows if r[1] is not None and r[1] == r[1]}

    def _query_vector(self, vector: Sequence[float]) -> Vector:
        if len(vector) != self.dim:
            raise UsageError(
                f"A vector of {len(vector)} numbers for an index of {self.dim}: "
                "embed with the database's embedder."
            )
        return Vector(list(vector))

    def nearest(
        self,
        scope: Scope,
        vector: Sequence[float],
        filters: MemoryFilter,
        *,
        k: int,
        exact: bool | None = None,
    ) -> dict[int, float]:
        """Exact under a narrowing filter or in a small scope; otherwise the
        HNSW index, whose candidates are kept only within the scope and
        filters (fetching more until 2k pass) and re-scored exactly."""
        q = self._query_vector(vector)
        if k < 1 or not any(vector):
            return {}
        where, params = filter_sql(scope, filters)
        if exact is None:
            exact = filters.narrow or self.keyword_stats(scope).rows <= EXACT_VECTOR_LIMIT
        if exact:
            rows = self.x(
                "SELECT m.id, v.embedding <=> %s AS d FROM memories m "
                f"JOIN memory_vectors v ON v.id = m.id WHERE {where} "
                "ORDER BY d, m.id LIMIT %s",
                [q, *params, k],
            ).fetchall()
            return {int(r[0]): 1.0 - float(r[1]) for r in rows if r[1] == r[1]}
        fetch = min(max(k * 4, 100), KNN_MAX)
        while True:
            with self.transaction(scope):
                self.x(f"SET LOCAL hnsw.ef_search = {int(fetch)}")
                found = [
                    int(r[0])
                    for r in self.x(
                        "SELECT id FROM memory_vectors ORDER BY embedding <=> %s LIMIT %s",
                        [q, fetch],
                    ).fetchall()
                ]
            kept = self.passing(scope, filters, found)
            if len(kept) >= 2 * k or len(found) < fetch or fetch >= KNN_MAX:
                break
            fetch = min(fetch * 4, KNN_MAX)
        sims = self.similarities(scope, vector, kept)
        return dict(heapq.nlargest(k, sims.items(), key=lambda kv: (kv[1], -kv[0])))

    def passing(self, scope: Scope, filters: MemoryFilter, ids: Iterable[int]) -> list[int]:
        """Those of ``ids`` in the scope that pass ``filters``, in the same order."""
        ids = list(ids)
        where, params = filter_sql(scope, filters)
        rows = self.x(
            f"SELECT m.id FROM memories m WHERE m.id = ANY(%s) AND {where}",
            [storable(ids), *params],
        ).fetchall()
        ok = {int(r[0]) for r in rows}
        return [i for i in ids if i in ok]

    def session_neighbours(
        self, scope: Scope, anchors: Iterable[int], window: int, filters: MemoryFilter
    ) -> dict[int, list[tuple[int, int]]]:
        self.check(scope)
        anchors = storable(anchors)
        if not anchors or window < 1:
            return {}
        side = (
            "SELECT c.id, p.id FROM memories c CROSS JOIN LATERAL (SELECT q.id FROM memories q "
            "WHERE q.conversation_id = c.conversation_id AND q.kind = 'message' "
            "AND q.profile = c.profile AND q.id {op} c.id ORDER BY q.id {order} LIMIT %s) p "
            "WHERE c.id = ANY(%s) AND c.kind = 'message' AND c.profile = ANY(%s)"
        )
        pairs = self.x(
            side.format(op="<", order="DESC") + " UNION ALL " + side.format(op=">", order="ASC"),
            [window, anchors, list(scope.readable)] * 2,
        ).fetchall()
        around: dict[int, list[int]] = {}
        for anchor, other in pairs:
            around.setdefault(int(anchor), []).append(int(other))
        ok = set(self.passing(scope, filters, {i for ids in around.values() for i in ids}))
        out: dict[int, list[tuple[int, int]]] = {}
        for anchor, ids in around.items():
            before = sorted((i for i in ids if i < anchor), reverse=True)
            after = sorted(i for i in ids if i > anchor)
            near = [(i, -n) for n, i in enumerate(before, start=1) if i in ok]
            near += [(i, n) for n, i in enumerate(after, start=1) if i in ok]
            out[anchor] = near
        return out
