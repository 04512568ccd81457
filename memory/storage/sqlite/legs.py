"""The search legs of :class:`~memory.storage.sqlite.backend.SQLiteBackend`:
the protocol's methods over :mod:`.keywords` (BM25, speakers, matches) and
:mod:`.search` (vectors, neighbours, what ranking reads)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from memory.errors import UsageError
from memory.models.embed import pack
from memory.storage.protocol import Column
from memory.storage.records import KeywordStats, MemoryBrief, MemoryFilter
from memory.storage.scope import Scope
from memory.storage.sqlite import keywords as _keywords
from memory.storage.sqlite import search as _search
from memory.storage.sqlite.db import Connection


class SearchLegsMixin:
    conn: Connection
    dim: int

    def _check_vector(self, vector: Sequence[float]) -> bytes:
        if len(vector) != self.dim:
            raise UsageError(
                f"A vector of {len(vector)} numbers for an index of {self.dim}: "
                "embed with the database's embedder."
            )
        return pack(vector)

    def keyword_stats(self, scope: Scope) -> KeywordStats:
        return _keywords.stats(self.conn, scope)

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
        return _keywords.keyword_scores(
            self.conn, scope, term, filters, column=column, limit=limit, newest=newest
        )

    def keyword_match(self, scope: Scope, terms: Sequence[str], filters: MemoryFilter) -> list[int]:
        return _keywords.keyword_match(self.conn, scope, terms, filters)

    def nearest(
        self,
        scope: Scope,
        vector: Sequence[float],
        filters: MemoryFilter,
        *,
        k: int,
        exact: bool | None = None,
    ) -> dict[int, float]:
        blob = self._check_vector(vector)
        return _search.nearest(self.conn, scope, vector, filters, k=k, exact=exact, blob=blob)

    def similarities(
        self, scope: Scope, vector: Sequence[float], ids: Iterable[int]
    ) -> dict[int, float]:
        return _search.similarities(self.conn, scope, self._check_vector(vector), ids)

    def session_neighbours(
        self, scope: Scope, anchors: Iterable[int], window: int, filters: MemoryFilter
    ) -> dict[int, list[tuple[int, int]]]:
        return _search.session_neighbours(self.conn, scope, anchors, window, filters)

    def speakers(
        self, scope: Scope, term: str, filters: MemoryFilter, *, limit: int = 5
    ) -> list[str]:
        return _keywords.speakers(self.conn, scope, term, filters, limit)

    def briefs(self, scope: Scope, ids: Iterable[int], filters: MemoryFilter) -> list[MemoryBrief]:
        return _search.briefs(self.conn, scope, ids, filters)

    def row_bound(self, scope: Scope) -> int:
        return _search.row_bound(self.conn, scope)
