"""The audit trail, over SQLite. ``memory_events`` has no namespace column:
an event belongs to its memory's namespace, or, once the memory is gone (or
for an event about no one memory), to the ``profile`` its detail names."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from memory.errors import NotFoundError
from memory.storage.records import Event, NewEvent
from memory.storage.scope import Scope
from memory.storage.sqlite import lineage as _lineage
from memory.storage.sqlite.db import Connection
from memory.storage.sqlite.filters import marks

_EVENT_COLUMNS = "e.id, e.memory_id, e.event, e.at, e.actor, e.before, e.after, e.detail"
# The namespace an event belongs to (see the module docstring).
_OWNER = (
    "coalesce((SELECT m.profile FROM memories m WHERE m.id = e.memory_id), "
    "json_extract(e.detail, '$.profile'))"
)


def _event(row: tuple[Any, ...]) -> Event:
    return Event(
        int(row[0]),
        row[1],
        row[2],
        row[3],
        row[4],
        json.loads(row[5]) if row[5] else None,
        json.loads(row[6]) if row[6] else None,
        json.loads(row[7] or "{}"),
    )


class EventsMixin:
    conn: Connection

    def add_event(self, scope: Scope, event: NewEvent) -> int:
        detail = dict(event.detail)
        if event.memory_id is None:
            detail["profile"] = scope.writes
        else:
            row = self.conn.execute(
                "SELECT 1 FROM memories WHERE id = ? AND profile = ?",
                [event.memory_id if _lineage.storable_id(event.memory_id) else 0, scope.writes],
            ).fetchone()
            if row is None:
                raise NotFoundError(f"No memory with id {event.memory_id}.")
        return _lineage.insert_event(
            self.conn,
            event.memory_id,
            event.event,
            at="",
            actor=event.actor,
            before=event.before,
            after=event.after,
            detail=detail,
        )

    def events(self, scope: Scope, memory_id: int) -> list[Event]:
        missing = NotFoundError(f"No memory with id {memory_id}: see `mem list` for ids.")
        if not _lineage.storable_id(memory_id):
            raise missing
        owner = self.conn.execute(
            "SELECT profile FROM memories WHERE id = ? UNION ALL "
            "SELECT json_extract(detail, '$.profile') FROM memory_events "
            "WHERE memory_id = ? AND event = 'forget' LIMIT 1",
            [memory_id, memory_id],
        ).fetchone()
        if owner is None or owner[0] not in scope.readable:
            raise missing
        rows = self.conn.execute(
            f"SELECT {_EVENT_COLUMNS} FROM memory_events e WHERE e.memory_id = ? ORDER BY e.id",
            [memory_id],
        ).fetchall()
        return [_event(r) for r in rows]

    def mark_event(self, scope: Scope, event_id: int, detail: Mapping[str, object]) -> None:
        cur = self.conn.execute(
            "UPDATE memory_events AS e SET detail = json_patch(e.detail, ?) "
            f"WHERE e.id = ? AND {_OWNER} = ?",
            [json.dumps(dict(detail)), event_id, scope.writes],
        )
        if not cur.rowcount:
            raise NotFoundError(f"No event with id {event_id}.")

    def namespaces(self, scope: Scope) -> list[str]:
        rows = self.conn.execute(
            "SELECT profile FROM memories UNION SELECT profile FROM conversations "
            "UNION SELECT profile FROM documents ORDER BY 1"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def change_mark(self, scope: Scope) -> int:
        row = self.conn.execute("SELECT max(id) FROM memory_events").fetchone()
        return int(row[0] or 0)

    def last_events(
        self,
        scope: Scope,
        *,
        events: Sequence[str],
        limit: int = 1,
        batch: str | None = None,
    ) -> list[Event]:
        rows = self.conn.execute(
            f"SELECT {_EVENT_COLUMNS} FROM memory_events e JOIN memories m ON m.id = e.memory_id "
            f"WHERE m.profile = ? AND e.event IN ({marks(len(events))}) AND e.actor != 'undo' "
            "AND json_extract(e.detail, '$.undone') IS NULL "
            "AND (? IS NULL OR json_extract(e.detail, '$.batch') = ?) ORDER BY e.id DESC LIMIT ?",
            [scope.writes, *events, batch, batch, limit],
        ).fetchall()
        return [_event(r) for r in rows]

    def event(self, scope: Scope, event_id: int) -> Event | None:
        row = self.conn.execute(
            "SELECT memory_id FROM memory_events WHERE id = ?", [event_id]
        ).fetchone()
        if row is None:
            return None
        return next((e for e in self.events(scope, row[0]) if e.id == event_id), None)
