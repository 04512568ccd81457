"""The lifecycle calls of the seam over PostgreSQL (memory.storage.protocol_lifecycle):
selections for retention and ``forget --older-than``, retention's deletion,
the message tags of fact-key extraction, a document's chunks. Deletion goes
through :func:`.lineage.delete_row`, the one deletion of a memory."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..records import Message
from ..scope import Scope
from . import lineage as _lineage
from .base import Base
from .filters import storable

_MESSAGE_COLUMNS = "id, conversation_id, role, content, created_at, speaker, external_id, profile"


class LifecycleMixin(Base):
    def memory_ids(
        self, scope: Scope, *, kind: str | None = None, before: str | None = None
    ) -> list[int]:
        self.check(scope)
        query = "SELECT id FROM memories WHERE profile = %s"
        params: list[Any] = [scope.writes]
        if kind is not None:
            query += " AND kind = %s"
            params.append(kind)
        if before is not None:
            query += " AND created_at < %s"
            params.append(before)
        return [int(r[0]) for r in self.x(query + " ORDER BY id", params).fetchall()]

    def expired_ids(self, scope: Scope, at: str) -> list[int]:
        self.check(scope)
        rows = self.x(
            "SELECT id FROM memories WHERE profile = %s AND expires_at IS NOT NULL "
            "AND expires_at <= %s AND kind <> 'message' ORDER BY id",
            [scope.writes, at],
        ).fetchall()
        return [int(r[0]) for r in rows]

    def message_ids(self, scope: Scope, *, before: str | None = None) -> list[int]:
        self.check(scope)
        query = "SELECT id FROM messages WHERE profile = %s"
        params: list[Any] = [scope.writes]
        if before is not None:
            query += " AND created_at < %s"
            params.append(before)
        return [int(r[0]) for r in self.x(query + " ORDER BY id", params).fetchall()]

    def expire(self, scope: Scope, memory_ids: Sequence[int], message_ids: Sequence[int]) -> None:
        own = "SELECT kind, source FROM memories WHERE id = %s AND profile = %s"
        with self.transaction(scope):
            for memory_id in storable(memory_ids):
                row = self.x(own, [memory_id, scope.writes]).fetchone()
                if row is not None:
                    detail = {"kind": row[0], "source": row[1], "with_source": False}
                    _lineage.delete_row(self, memory_id, detail=detail)
            for message_id in storable(message_ids):
                rows = self.x(
                    "SELECT id, kind, source FROM memories WHERE source_message_id = %s "
                    "AND kind = 'message' AND profile = %s ORDER BY id",
                    [message_id, scope.writes],
                ).fetchall()
                for memory_id, kind, source in rows:
                    detail = {"kind": kind, "source": source, "with_source": True}
                    _lineage.delete_row(self, int(memory_id), detail=detail)
                self.x(
                    "DELETE FROM messages WHERE id = %s AND profile = %s",
                    [message_id, scope.writes],
                )

    def used_ids(self, scope: Scope, *, min_uses: int = 1) -> list[int]:
        self.check(scope)
        rows = self.x(
            "SELECT id FROM memories WHERE profile = %s AND use_count >= %s "
            "AND superseded_by IS NULL AND valid_until IS NULL ORDER BY use_count DESC, id",
            [scope.writes, max(int(min_uses), 1)],
        ).fetchall()
        return [int(r[0]) for r in rows]

    def untagged_messages(self, scope: Scope, conversation_id: str, key: str) -> list[Message]:
        self.check(scope)
        rows = self.x(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = %s "
            "AND profile = %s AND (metadata->>%s) IS NULL ORDER BY id",
            [conversation_id, scope.writes, key],
        ).fetchall()
        return [Message(*r) for r in rows]

    def tag_messages(self, scope: Scope, ids: Iterable[int], key: str) -> None:
        self.check(scope)
        self.x(
            "UPDATE messages SET metadata = jsonb_set(metadata, ARRAY[%s], '1') "
            "WHERE profile = %s AND id = ANY(%s)",
            [key, scope.writes, storable(ids)],
        )

    def document_chunks(self, scope: Scope, path: str) -> list[int]:
        self.check(scope)
        rows = self.x(
            "SELECT id FROM memories WHERE kind = 'document' AND profile = %s "
            "AND metadata->>'path' = %s ORDER BY id",
            [scope.writes, path],
        ).fetchall()
        return [int(r[0]) for r in rows]

    def touch_document(
        self, scope: Scope, path: str, *, size: int, mtime: float | None = None
    ) -> None:
        self.check(scope)
        self.x(
            "UPDATE documents SET mtime = coalesce(%s, mtime), size = %s "
            "WHERE path = %s AND profile = %s",
            [mtime, size, path, scope.writes],
        )

    def checkpoint(self, scope: Scope) -> None:
        """No-op: the server manages its WAL (a CHECKPOINT needs a superuser)."""
        self.check(scope)
