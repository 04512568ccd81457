"""The transfer calls of the seam over SQLite: what ``mem export`` streams out
and what ``mem import`` looks up and restores (see memory.storage.transfer)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from memory.records import MEMORY_COLUMNS, memory_from_row
from memory.storage.records import Conversation, Document, Memory, MemoryFilter, NewMessage
from memory.storage.scope import Scope
from memory.storage.sqlite import lineage as _lineage
from memory.storage.sqlite.db import Connection, transaction
from memory.storage.sqlite.filters import filter_sql
from memory.storage.transfer import MemoryTimes, StoredMessage

_MESSAGE = (
    "id, conversation_id, role, content, created_at, speaker, external_id, import_key, metadata"
)
_DOCUMENT = "path, profile, format, hash, size, mtime, chunks, chunker, added_at, updated_at"


def _message(row: tuple[Any, ...]) -> StoredMessage:
    i, conv, role, content, at, speaker, ext, key, meta = row
    return StoredMessage(i, conv, role, content, at, speaker, ext, key, json.loads(meta or "{}"))


class TransferMixin:
    conn: Connection

    def iter_conversations(self, scope: Scope) -> Iterator[Conversation]:
        rows = self.conn.execute(
            "SELECT id, profile, title, created_at, updated_at, summary, summary_upto "
            "FROM conversations WHERE profile = ? ORDER BY rowid",
            [scope.writes],
        )
        for row in rows:
            yield Conversation(*row)

    def iter_messages(self, scope: Scope) -> Iterator[StoredMessage]:
        rows = self.conn.execute(
            f"SELECT {_MESSAGE} FROM messages WHERE profile = ? ORDER BY id", [scope.writes]
        )
        for row in rows:
            yield _message(row)

    def iter_memories(self, scope: Scope, filters: MemoryFilter) -> Iterator[Memory]:
        where, params = filter_sql(scope, filters)
        rows = self.conn.execute(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.profile = ? AND {where} "
            "ORDER BY m.id",
            [scope.writes, *params],
        )
        for row in rows:
            yield memory_from_row(row)

    def iter_documents(self, scope: Scope) -> Iterator[Document]:
        rows = self.conn.execute(
            f"SELECT {_DOCUMENT} FROM documents WHERE profile = ? ORDER BY id", [scope.writes]
        )
        for row in rows:
            yield Document(*row)

    def import_key(self, scope: Scope, message_id: int) -> str | None:
        row = self.conn.execute(
            "SELECT import_key FROM messages WHERE id = ? AND profile = ?",
            [message_id if _lineage.storable_id(message_id) else 0, scope.writes],
        ).fetchone()
        return None if row is None else str(row[0])

    def import_keys(self, scope: Scope) -> set[str]:
        rows = self.conn.execute(
            "SELECT import_key FROM messages WHERE import_key IS NOT NULL AND profile = ?",
            [scope.writes],
        )
        return {r[0] for r in rows}

    def message_by_key(self, scope: Scope, key: str) -> StoredMessage | None:
        row = self.conn.execute(
            f"SELECT {_MESSAGE} FROM messages WHERE import_key = ? AND profile = ?",
            [key, scope.writes],
        ).fetchone()
        return None if row is None else _message(row)

    def find_memories(
        self, scope: Scope, *, kind: str, content: str, created_at: str | None = None
    ) -> list[int]:
        sql = "SELECT id FROM memories WHERE profile = ? AND kind = ? AND content = ?"
        params: list[Any] = [scope.writes, kind, content]
        if created_at is not None:
            sql += " AND created_at = ?"
            params.append(created_at)
        return [int(r[0]) for r in self.conn.execute(sql + " ORDER BY id", params)]

    def restore_times(self, scope: Scope, memory_id: int, times: MemoryTimes) -> None:
        t = times
        self.conn.execute(
            "UPDATE memories SET updated_at = coalesce(?, updated_at), last_used_at = ?, "
            "use_count = ?, valid_from = coalesce(?, valid_from), valid_until = ?, "
            "expires_at = ? WHERE id = ? AND profile = ?",
            [t.updated_at, t.last_used_at, t.use_count, t.valid_from, t.valid_until]
            + [t.expires_at, memory_id, scope.writes],
        )

    def link_superseded(self, scope: Scope, memory_id: int, by: int) -> None:
        self.conn.execute(
            "UPDATE memories SET superseded_by = ? "
            "WHERE id = ? AND profile = ? AND superseded_by IS NULL",
            [by, memory_id, scope.writes],
        )

    def restore_conversation(
        self,
        scope: Scope,
        conversation_id: str,
        *,
        title: str | None = None,
        updated_at: str | None = None,
        summary: str | None = None,
        summary_upto: int | None = None,
    ) -> bool:
        own = [conversation_id, scope.writes]
        if title is not None or updated_at is not None:
            self.conn.execute(
                "UPDATE conversations SET title = coalesce(title, ?), "
                "updated_at = max(updated_at, coalesce(?, updated_at)) "
                "WHERE id = ? AND profile = ?",
                [title, updated_at, *own],
            )
        if summary_upto is not None:
            self.conn.execute(
                "UPDATE conversations SET summary_upto = ? WHERE id = ? AND profile = ?",
                [summary_upto, *own],
            )
        if summary is None:
            return False
        cur = self.conn.execute(
            "UPDATE conversations SET summary = ? WHERE id = ? AND profile = ? AND summary IS NULL",
            [summary, *own],
        )
        return bool(cur.rowcount > 0)

    def import_document(self, scope: Scope, document: Document) -> bool:
        d = document
        cur = self.conn.execute(
            "INSERT INTO documents(profile, path, format, hash, size, mtime, chunks, chunker, "
            "added_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(profile, path) DO NOTHING",
            [scope.writes, d.path, d.format, d.hash, d.size, d.mtime, d.chunks, d.chunker]
            + [d.added_at, d.updated_at],
        )
        return bool(cur.rowcount > 0)

    def replace_message(
        self, scope: Scope, message_id: int, message: NewMessage, *, reason: str, actor: str
    ) -> str | None:
        m = message
        own = [message_id if _lineage.storable_id(message_id) else 0, scope.writes]
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE messages SET role = ?, speaker = ?, content = ?, "
                "created_at = coalesce(?, created_at), metadata = ? WHERE id = ? AND profile = ?",
                [m.role, m.speaker, m.content, m.created_at or None, json.dumps(m.metadata), *own],
            )
            old = self.conn.execute(
                "SELECT id FROM memories WHERE source_message_id = ? AND kind = 'message' "
                "AND profile = ?",
                own,
            ).fetchone()
            if old is not None:
                detail = {"kind": "message", "source": "import", "reason": reason}
                _lineage.delete_row(self.conn, int(old[0]), detail=detail, actor=actor)
            row = self.conn.execute(
                "SELECT created_at FROM messages WHERE id = ? AND profile = ?", own
            ).fetchone()
        return None if row is None else str(row[0])
