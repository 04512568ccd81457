"""The lifecycle calls of the seam over SQLite: selections for retention and
``forget --older-than``, retention's deletion, the message tags of fact-key
extraction, a document's chunks and the WAL checkpoint after ``mem add``.

Deletion goes through :func:`memory.storage.sqlite.lineage.delete_row`, the
one deletion of a memory (row, keyword and vector entries, audit text).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from memory.storage.records import Message
from memory.storage.scope import Scope
from memory.storage.sqlite import lineage as _lineage
from memory.storage.sqlite.db import Connection, transaction

_MESSAGE_COLUMNS = "id, conversation_id, role, content, created_at, speaker, external_id, profile"


class LifecycleMixin:
    conn: Connection

    def memory_ids(
        self, scope: Scope, *, kind: str | None = None, before: str | None = None
    ) -> list[int]:
        sql = "SELECT id FROM memories WHERE profile = ?"
        params: list[object] = [scope.writes]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        if before is not None:
            sql += " AND created_at < ?"
            params.append(before)
        return [int(r[0]) for r in self.conn.execute(sql + " ORDER BY id", params)]

    def expired_ids(self, scope: Scope, at: str) -> list[int]:
        rows = self.conn.execute(
            "SELECT id FROM memories WHERE profile = ? AND expires_at IS NOT NULL "
            "AND expires_at <= ? AND kind != 'message' ORDER BY id",
            [scope.writes, at],
        )
        return [int(r[0]) for r in rows]

    def message_ids(self, scope: Scope, *, before: str | None = None) -> list[int]:
        sql = "SELECT id FROM messages WHERE profile = ?"
        params: list[object] = [scope.writes]
        if before is not None:
            sql += " AND created_at < ?"
            params.append(before)
        return [int(r[0]) for r in self.conn.execute(sql + " ORDER BY id", params)]

    def expire(self, scope: Scope, memory_ids: Sequence[int], message_ids: Sequence[int]) -> None:
        own = "SELECT kind, source FROM memories WHERE id = ? AND profile = ?"
        with transaction(self.conn):
            for memory_id in memory_ids:
                row = self.conn.execute(own, [memory_id, scope.writes]).fetchone()
                if row is not None:
                    detail = {"kind": row[0], "source": row[1], "with_source": False}
                    _lineage.delete_row(self.conn, memory_id, detail=detail)
            for message_id in message_ids:
                if not _lineage.storable_id(message_id):
                    continue
                rows = self.conn.execute(
                    "SELECT id, kind, source FROM memories WHERE source_message_id = ? "
                    "AND kind = 'message' AND profile = ?",
                    [message_id, scope.writes],
                ).fetchall()
                for memory_id, kind, source in rows:
                    detail = {"kind": kind, "source": source, "with_source": True}
                    _lineage.delete_row(self.conn, int(memory_id), detail=detail)
                self.conn.execute(
                    "DELETE FROM messages WHERE id = ? AND profile = ?", [message_id, scope.writes]
                )

    def used_ids(self, scope: Scope, *, min_uses: int = 1) -> list[int]:
        rows = self.conn.execute(
            "SELECT id FROM memories WHERE profile = ? AND use_count >= ? "
            "AND superseded_by IS NULL AND valid_until IS NULL ORDER BY use_count DESC, id",
            [scope.writes, max(int(min_uses), 1)],
        )
        return [int(r[0]) for r in rows]

    def untagged_messages(self, scope: Scope, conversation_id: str, key: str) -> list[Message]:
        rows = self.conn.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND profile = ? "
            "AND json_extract(metadata, '$.' || ?) IS NULL ORDER BY id",
            [conversation_id, scope.writes, key],
        ).fetchall()
        return [Message(*r) for r in rows]

    def tag_messages(self, scope: Scope, ids: Iterable[int], key: str) -> None:
        self.conn.execute(
            "UPDATE messages SET metadata = json_set(metadata, '$.' || ?, 1) "
            "WHERE profile = ? AND id IN (SELECT value FROM json_each(?))",
            [key, scope.writes, json.dumps([i for i in ids if _lineage.storable_id(i)])],
        )

    def document_chunks(self, scope: Scope, path: str) -> list[int]:
        rows = self.conn.execute(  # the partial expression index on metadata's path
            "SELECT id FROM memories WHERE kind = 'document' AND profile = ? "
            "AND json_extract(metadata, '$.path') = ? ORDER BY id",
            [scope.writes, path],
        )
        return [int(r[0]) for r in rows]

    def touch_document(
        self, scope: Scope, path: str, *, size: int, mtime: float | None = None
    ) -> None:
        self.conn.execute(
            "UPDATE documents SET mtime = coalesce(?, mtime), size = ? "
            "WHERE path = ? AND profile = ?",
            [mtime, size, path, scope.writes],
        )

    def checkpoint(self, scope: Scope) -> None:
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
