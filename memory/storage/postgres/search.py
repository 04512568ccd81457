"""The search legs over PostgreSQL: per-term BM25 from the scope's own
statistics, pgvector KNN re-scored exactly, session neighbours.

BM25 is FTS5's formula (k1 1.2, b 0.75, IDF floored at 1e-6), as the SQLite
backend computes it: N and the average length from ``keyword_stats`` (rows and
words of the readable namespaces, kept by a trigger), a word's document
frequency from ``term_stats`` (per namespace, lexeme and weight, kept by a
trigger) and a phrase's from the GIN index over readable rows only, each
row's phrase frequency from the positions in its ``tsv`` and its length from
``tokens``. ``ts_rank`` knows no document frequency, and a BM25 extension
keeps statistics over every namespace, which would let one profile's rows move
another's scores.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterable, Sequence

from pgvector import Vector

from ...errors import UsageError
from ..protocol import Column
from ..records import KeywordStats, MemoryFilter
from ..scope import Scope
from .base import Base
from .filters import filter_sql, scope_sql, storable
from .migrations import SPEAKER_TSV

K1, B, IDF_FLOOR = 1.2, 0.75, 1e-6
# A scope of up to this many rows is searched by exact scan, not the HNSW index.
EXACT_VECTOR_LIMIT = 2_000
KNN_MAX = 1_000  # pgvector's largest hnsw.ef_search
_WEIGHT = {"content": "A", "speaker": "B"}
_SPEAKER = SPEAKER_TSV.replace("speaker", "m.speaker")


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
    ``'water':A <2> 'bill':A`` (the lexemes are stemmed already); ``weight``
    "" for any."""
    parts: list[str] = []
    last = phrase[0][0]
    for offset, lexeme in phrase:
        if parts:
            parts.append(f"<{offset - last}>")
        quoted = lexeme.replace("\\", "\\\\").replace("'", "''")
        parts.append(f"'{quoted}':{weight}" if weight else f"'{quoted}'")
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


# How often one lexeme (parameter: ``'lexeme'`` as a tsquery) occurs in
# ``c.tsv`` (``c``: the scored rows) at one weight (parameter: ``{a}`` or
# ``{b}``), found in the ``ranks`` table (parameter) by its ``ts_rank``: for n
# positions of one weight ranked with that weight alone, ``ts_rank`` is a sum
# over 1/j² that grows with n (a C call per row, where unnesting the tsvector
# costs a plan per row). NULL for a rank not in the table (never seen:
# :data:`COUNTED` counts the positions then). The table and the weight are
# literals: as parameters, the generic plan of a prepared statement would cast
# them for every row (measured 1.6x slower).
FOUND = (
    "array_position('{ranks}'::real[], ts_rank('{{1,1,1,1}}', ts_filter(c.tsv, "
    "'{{{weight}}}'), %s::tsquery))"
)
COUNTED = (
    "greatest(1, (SELECT count(*) FROM memories x CROSS JOIN LATERAL unnest(x.tsv) u "
    "CROSS JOIN LATERAL unnest(u.weights) w WHERE x.id = c.id AND u.lexeme = %s AND w = %s))"
)


# N, the words and a word's document frequency in the readable namespaces, at
# one weight (parameters: the namespaces three times, the lexeme, the weight):
# ``keyword_stats`` and ``term_stats`` (migration 7), read in one snapshot.
_WORD_STATS = (
    "SELECT (SELECT coalesce(sum(rows), 0) FROM keyword_stats WHERE profile = ANY(%s)), "
    "(SELECT coalesce(sum(tokens), 0) FROM keyword_stats WHERE profile = ANY(%s)), "
    "(SELECT coalesce(sum(docs), 0) FROM term_stats WHERE profile = ANY(%s) "
    "AND lexeme = %s AND weight = %s)"
)
# Walking the rows back costs about N / df rows per match wanted; reading a
# word's matches through the index costs df rows, each about ten times a walked
# one (measured at 1M memories: 0.3 µs a row walked, 3 µs a match fetched and
# sorted). A word walks back when df² > N · newest · this.
_WALK_BACK = 0.1


class SearchMixin(Base):
    def _ranks(self) -> str:
        """``ts_rank`` of 1 … 256 positions of one lexeme (tsvector keeps at
        most 256), as this server computes it (float4), as an array literal
        (each float4 printed exactly): see :data:`FOUND`."""
        if not self.ranks:
            row = self.x(
                "SELECT array_agg(ts_rank('{1,1,1,1}', (SELECT string_agg('x:' || i || 'A', ' ') "
                "FROM generate_series(1, n) i)::tsvector, 'x') ORDER BY n) "
                "FROM generate_series(1, 256) n"
            ).fetchone()
            assert row is not None
            self.ranks = "{" + ",".join(repr(float(r)) for r in row[0]) + "}"
        return self.ranks

    def phrases(self, terms: Iterable[str]) -> dict[str, list[tuple[int, str]]]:
        """Each term as the server's ``english`` configuration lexes it:
        [(position, lexeme)]. Remembered per connection (the configuration is
        the migrations' own), so a word costs one round trip per session."""
        terms = [t for t in dict.fromkeys(terms) if t.strip()]
        missing = [t for t in terms if t not in self.lexed]
        if missing:
            for term, tsv in self.x(
                "SELECT t, to_tsvector('english', t)::text FROM unnest(%s::text[]) t", [missing]
            ).fetchall():
                self.remember(str(term), str(tsv))
        return {t: self.lexed[t] for t in terms}

    def remember(self, term: str, tsv: str) -> None:
        """Keep ``term``'s lexemes, from its ``to_tsvector`` text (see :meth:`phrases`)."""
        if len(self.lexed) > 50_000:
            self.lexed.clear()
        self.lexed[term] = sorted(
            (p, lex) for lex, spots in positions(tsv).items() for p, _ in spots
        )

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
        phrase = self.phrases([term])[term]
        if not phrase:
            return {}
        weight = _WEIGHT[column]
        # The speaker's words have their own index (migration 6); the text's
        # are ``tsv``'s weight A (a speaker's name elsewhere is weight B).
        if column == "speaker":
            match, query = f"{_SPEAKER} @@ %s::tsquery", tsquery(phrase, "")
        else:
            match, query = "m.tsv @@ %s::tsquery", tsquery(phrase, weight)
        readable = list(scope.readable)
        where, params = filter_sql(scope, filters)
        if len(phrase) == 1:
            return self._word_scores(
                readable, phrase, weight, (where, params), match, query, newest, limit
            )
        # A phrase: N, length and df from one statement (one snapshot: a writer
        # committing in between could make df exceed N), positions counted here.
        matches = "SELECT count(*)::float8 AS d FROM memories m WHERE m.profile = ANY(%s) "
        stats = self.x(
            "WITH " + idf_sql(matches + f"AND {match}") + " SELECT n, idf, avgdl FROM k",
            [readable, readable, query],
        ).fetchone()
        if stats is None or not stats[0]:
            return {}
        idf, avgdl = float(stats[1]), float(stats[2])
        scores: dict[int, float] = {}
        for memory_id, length, tsv in self.x(
            f"SELECT m.id, m.tokens, m.tsv::text FROM memories m WHERE {where} "
            f"AND {match} ORDER BY m.id DESC LIMIT %s",
            [*params, query, newest],
            prepare=False,  # planned for its words: see _word_scores on generic plans
        ).fetchall():
            freq = max(phrase_count(phrase, str(tsv), weight), 1)
            norm = K1 * (1 - B + B * int(length) / avgdl)
            scores[int(memory_id)] = idf * (freq * (K1 + 1.0)) / (freq + norm)
        return dict(heapq.nlargest(limit, scores.items(), key=lambda kv: (kv[1], kv[0])))

    def _word_scores(
        self,
        readable: list[str],
        phrase: list[tuple[int, str]],
        weight: str,
        filtered: tuple[str, list[object]],
        match: str,
        query: str,
        newest: int | None,
        limit: int,
    ) -> dict[int, float]:
        """BM25 of one word: N, the length and the word's document frequency
        from the statistics tables (one lookup, however common the word: a
        word no readable row holds costs nothing more), then the newest
        matches that pass the filters, up to ``newest``, read and scored.

        The matches are read one of two ways, each its own statement, so the
        plan a prepared statement settles on suits every word it serves: a
        common word walks the rows back from the newest (a few thousand rows
        give its ``newest`` matches), a rare one reads its matches from the
        index and sorts them. One statement for both, planned once (psycopg
        prepares a statement after 5 runs), walked back for every word: 200 ms
        at 1M rows for a word no row holds; planned for each word, 0.4 ms more
        per word."""
        lexeme = phrase[0][1]
        row = self.x(_WORD_STATS, [readable, readable, readable, lexeme, weight]).fetchone()
        assert row is not None
        n, total, df = (float(v) for v in row)
        if n <= 0 or df <= 0:
            return {}
        x = math.log((max(n - df, 0.0) + 0.5) / (df + 0.5))
        idf = IDF_FLOOR if x <= 0 else x
        avgdl = total / n if total > 0 else 1.0
        common = newest is not None and df * df > n * newest * _WALK_BACK
        where, params = filtered
        found = FOUND.format(ranks=self._ranks(), weight=weight.lower())
        rows = self.x(
            "SELECT r.id, %s * r.f * %s / (r.f + %s * (1 - %s + %s * r.tokens / %s)) AS s "
            f"FROM (SELECT c.id, c.tokens, coalesce({found}, {COUNTED}) AS f FROM "
            f"(SELECT m.id, m.tokens, m.tsv FROM memories m WHERE {where} AND {match} "
            f"ORDER BY {'m.id' if common else 'm.id + 0'} DESC LIMIT %s) c OFFSET 0) r "
            "ORDER BY s DESC, r.id DESC LIMIT %s",
            [idf, K1 + 1.0, K1, B, B, avgdl, tsquery(phrase, ""), lexeme, weight,
             *params, query, newest, limit],
        ).fetchall()  # fmt: skip
        return {int(r[0]): float(r[1]) for r in rows}

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
            # One statement: the index's ``fetch`` nearest (hnsw.ef_search at
            # least ``fetch``, or it returns fewer), those in the scope and the
            # filters flagged, each re-scored exactly.
            self._ef_search(fetch)
            found = self.x(
                "WITH knn AS MATERIALIZED (SELECT id, embedding FROM memory_vectors "
                "ORDER BY embedding <=> %s LIMIT %s) SELECT k.id, m.id IS NOT NULL, "
                "1 - (k.embedding <=> %s) FROM knn k LEFT JOIN memories m "
                f"ON m.id = k.id AND {where}",
                [q, fetch, q, *params],
            ).fetchall()
            passed = [(int(i), s) for i, ok, s in found if ok]
            if len(passed) >= 2 * k or len(found) < fetch or fetch >= KNN_MAX:
                break
            fetch = min(fetch * 4, KNN_MAX)
        kept = {i: float(s) for i, s in passed if s is not None and s == s}
        return dict(heapq.nlargest(k, kept.items(), key=lambda kv: (kv[1], -kv[0])))

    def _ef_search(self, fetch: int) -> None:
        """``hnsw.ef_search`` = ``fetch`` for this session (one ``SET`` when it
        changes; inside a transaction, for that transaction only)."""
        if self.in_transaction:
            self.x(f"SET LOCAL hnsw.ef_search = {int(fetch)}")
        elif self.ef_search != fetch:
            self.x(f"SET hnsw.ef_search = {int(fetch)}")
            self.ef_search = fetch

    def session_neighbours(
        self, scope: Scope, anchors: Iterable[int], window: int, filters: MemoryFilter
    ) -> dict[int, list[tuple[int, int]]]:
        self.check(scope)
        anchors = storable(anchors)
        if not anchors or window < 1:
            return {}
        # Each neighbour with whether it passes the filters (one statement).
        where, params = filter_sql(scope, filters, alias="q")
        side = (
            "SELECT c.id, p.id, p.ok FROM memories c CROSS JOIN LATERAL (SELECT q.id, "
            f"({where}) AS ok FROM memories q "
            "WHERE q.conversation_id = c.conversation_id AND q.kind = 'message' "
            "AND q.profile = c.profile AND q.id {op} c.id ORDER BY q.id {order} LIMIT %s) p "
            "WHERE c.id = ANY(%s) AND c.kind = 'message' AND c.profile = ANY(%s)"
        )
        pairs = self.x(
            side.format(op="<", order="DESC") + " UNION ALL " + side.format(op=">", order="ASC"),
            [*params, window, anchors, list(scope.readable)] * 2,
        ).fetchall()
        around: dict[int, list[int]] = {}
        ok: set[int] = set()
        for anchor, other, passes in pairs:
            around.setdefault(int(anchor), []).append(int(other))
            if passes:
                ok.add(int(other))
        out: dict[int, list[tuple[int, int]]] = {}
        for anchor, ids in around.items():
            before = sorted((i for i in ids if i < anchor), reverse=True)
            after = sorted(i for i in ids if i > anchor)
            near = [(i, -n) for n, i in enumerate(before, start=1) if i in ok]
            near += [(i, n) for n, i in enumerate(after, start=1) if i in ok]
            out[anchor] = near
        return out
