"""The audit trail, over PostgreSQL. Each event row carries the namespace it
belongs to (``profile``), so it outlives its memory within that namespace."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg.types.json import Jsonb

from ...errors import NotFoundError
from ..records import Event, NewEvent
from ..scope import Scope
from . import lineage as _lineage
from .base import Base
from .filters import storable

_EVENT_COLUMNS = "e.id, e.memory_id, e.event, e.at, e.actor, e.before, e.after, e.detail"


def _event(row: tuple[Any, ...]) -> Event:
    return Event(int(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], dict(row[7] or {}))


class EventsMixin(Base):
    def add_event(self, scope: Scope, event: NewEvent) -> int:
        self.check(scope)
        detail = dict(event.detail)
        if event.memory_id is None:
            detail["profile"] = scope.writes
        else:
            row = self.x(
                "SELECT 1 FROM memories WHERE id = %s AND profile = %s",
                [(storable([event.memory_id]) or [0])[0], scope.writes],
            ).fetchone()
            if row is None:
                raise NotFoundError(f"No memory with id {event.memory_id}.")
        return _lineage.insert_event(
            self, event.memory_id, event.event, profile=scope.writes, actor=event.actor,
            before=event.before, after=event.after, detail=detail,
        )  # fmt: skip

    def events(self, scope: Scope, memory_id: int) -> list[Event]:
        self.check(scope)
        missing = NotFoundError(f"No memory with id {memory_id}: see `mem list` for ids.")
        if not storable([memory_id]):
            raise missing
        owner = self.x(
            "SELECT profile FROM memories WHERE id = %s AND profile = ANY(%s) UNION ALL "
            "SELECT profile FROM memory_events WHERE memory_id = %s AND event = 'forget' "
            "AND profile = ANY(%s) LIMIT 1",
            [memory_id, list(scope.readable), memory_id, list(scope.readable)],
        ).fetchone()
        if owner is None:
            raise missing
        rows = self.x(
            f"SELECT {_EVENT_COLUMNS} FROM memory_events e WHERE e.memory_id = %s "
            "AND e.profile = %s ORDER BY e.id",
            [memory_id, owner[0]],
        ).fetchall()
        return [_event(r) for r in rows]

    def mark_event(self, scope: Scope, event_id: int, detail: Mapping[str, object]) -> None:
        self.check(scope)
        cur = self.x(
            "UPDATE memory_events SET detail = detail || %s WHERE id = %s AND profile = %s",
            [Jsonb(dict(detail)), (storable([event_id]) or [0])[0], scope.writes],
        )
        if not cur.rowcount:
            raise NotFoundError(f"No event with id {event_id}.")

    def namespaces(self, scope: Scope) -> list[str]:
        self.check(scope)
        rows = self.x(
            "SELECT profile FROM memories UNION SELECT profile FROM conversations "
            "UNION SELECT profile FROM documents ORDER BY 1"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def change_mark(self, scope: Scope) -> int:
        self.check(scope)
        row = self.x("SELECT coalesce(max(id), 0) FROM memory_events").fetchone()
        return int(row[0]) if row else 0

    def last_events(
        self,
        scope: Scope,
        *,
        events: Sequence[str],
        limit: int = 1,
        batch: str | None = None,
    ) -> list[Event]:
        self.check(scope)
        rows = self.x(
            f"SELECT {_EVENT_COLUMNS} FROM memory_events e JOIN memories m ON m.id = e.memory_id "
            "WHERE e.profile = %s AND m.profile = %s AND e.event = ANY(%s) "
            "AND e.actor <> 'undo' AND NOT (e.detail ? 'undone') "
            "AND (%s::text IS NULL OR e.detail->>'batch' = %s) ORDER BY e.id DESC LIMIT %s",
            [scope.writes, scope.writes, list(events), batch, batch, limit],
        ).fetchall()
        return [_event(r) for r in rows]
