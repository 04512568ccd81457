"""The calls MemoryStore and retrieval make beyond the search legs of
:mod:`.search`, over PostgreSQL: what ranking reads of candidates, speakers,
a cheap row bound, id look-ups of the store. The Scope is in every query.
SQLite: :mod:`memory.storage.sqlite.legs` and ``conversations``/``events``."""

from __future__ import annotations

from collections.abc import Iterable

from ..records import Event, MemoryBrief, MemoryFilter
from ..scope import Scope
from .events import EventsMixin
from .filters import filter_sql, storable
from .migrations import SPEAKER_TSV
from .search import SearchMixin


class LegsMixin(EventsMixin, SearchMixin):
    def briefs(self, scope: Scope, ids: Iterable[int], filters: MemoryFilter) -> list[MemoryBrief]:
        self.check(scope)
        wanted = storable(ids)
        if not wanted:
            return []
        where, params = filter_sql(scope, filters)
        rows = self.x(
            "SELECT m.id, m.kind, m.conversation_id, m.created_at, m.speaker, m.importance "
            "FROM unnest(%s::bigint[]) WITH ORDINALITY AS j(id, n) "
            f"CROSS JOIN memories m WHERE m.id = j.id AND {where} ORDER BY j.n",
            [wanted, *params],
        ).fetchall()
        return [(int(r[0]), str(r[1]), r[2], str(r[3]), r[4], float(r[5])) for r in rows]

    def row_bound(self, scope: Scope) -> int:
        """The scope's rows as the keyword statistics count them (no scan)."""
        return self.keyword_stats(scope).rows

    def speakers(
        self, scope: Scope, term: str, filters: MemoryFilter, *, limit: int = 5
    ) -> list[str]:
        self.check(scope)
        if not term.strip() or limit < 1:
            return []
        if term in self.lexed and not self.lexed[term]:
            return []  # only stop words
        where, params = filter_sql(scope, filters)
        # The speaker index (migration 6: the words of ``tsv``'s weight B); the
        # term's lexemes come back too, for the keyword leg that follows.
        rows = self.x(
            "SELECT to_tsvector('english', %s)::text, s.speaker FROM (SELECT 1) o "
            f"LEFT JOIN LATERAL (SELECT m.speaker FROM memories m WHERE {where} AND "
            f"{SPEAKER_TSV.replace('speaker', 'm.speaker')} @@ phraseto_tsquery('english', %s) "
            "LIMIT %s) s ON true",
            [term, *params, term, limit],
        ).fetchall()
        self.remember(term, str(rows[0][0]))
        return [str(r[1]) for r in rows if r[1] is not None]

    # ------------------------------------------------------ for the store
    def taken(
        self, scope: Scope, *, conversation: str | None = None, import_key: str | None = None
    ) -> bool:
        # A member role sees only what it may read: an id another member holds
        # shows up later, as add_conversation's "taken".
        self.check(scope)
        if import_key is None:
            row = self.x("SELECT profile FROM conversations WHERE id = %s", [conversation])
        else:
            row = self.x("SELECT profile FROM messages WHERE import_key = %s LIMIT 1", [import_key])
        found = row.fetchone()
        return found is not None and found[0] != scope.writes

    def message_id(self, scope: Scope, import_key: str) -> int | None:
        self.check(scope)
        row = self.x(
            "SELECT id FROM messages WHERE import_key = %s AND profile = %s ORDER BY id LIMIT 1",
            [import_key, scope.writes],
        ).fetchone()
        return None if row is None else int(row[0])

    def event(self, scope: Scope, event_id: int) -> Event | None:
        self.check(scope)
        row = self.x(
            "SELECT memory_id FROM memory_events WHERE id = %s AND profile = ANY(%s)",
            [(storable([event_id]) or [0])[0], list(scope.readable)],
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return next((e for e in self.events(scope, int(row[0])) if e.id == event_id), None)
