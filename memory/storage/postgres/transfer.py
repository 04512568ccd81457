"""The transfer calls of the seam over PostgreSQL: what ``mem export``
streams out and what ``mem import`` looks up and restores
(memory.storage.transfer). Streams read the scope's own rows in order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from psycopg.types.json import Jsonb

from ..records import Conversation, Document, Memory, MemoryFilter, NewMessage
from ..scope import Scope
from ..transfer import MemoryTimes, StoredMessage
from . import lineage as _lineage
from .base import Base
from .filters import MEMORY_COLUMNS, filter_sql, memory_of, storable

_MESSAGE = (
    "id, conversation_id, role, content, created_at, speaker, external_id, import_key, metadata"
)
_DOCUMENT = "path, profile, format, hash, size, mtime, chunks, chunker, added_at, updated_at"


def _message(row: tuple[Any, ...]) -> StoredMessage:
    i, conv, role, content, at, speaker, ext, key, meta = row
    return StoredMessage(i, conv, role, content, at, speaker, ext, key, dict(meta or {}))


def _one(ids: list[int]) -> int:
    return ids[0] if ids else 0


class TransferMixin(Base):
    def iter_conversations(self, scope: Scope) -> Iterator[Conversation]:
        self.check(scope)
        rows = self.x(
            "SELECT id, profile, title, created_at, updated_at, summary, summary_upto "
            "FROM conversations WHERE profile = %s ORDER BY seq",
            [scope.writes],
        ).fetchall()
        for row in rows:
            yield Conversation(*row)

    def iter_messages(self, scope: Scope) -> Iterator[StoredMessage]:
        self.check(scope)
        # A server-side cursor: an export of many messages is not held in memory.
        with self.conn.cursor(name="mem_export_messages") as cur, self.conn.transaction():
            cur.execute(
                f"SELECT {_MESSAGE} FROM messages WHERE profile = %s ORDER BY id".encode(),
                [scope.writes],
            )
            for row in cur:
                yield _message(row)

    def iter_memories(self, scope: Scope, filters: MemoryFilter) -> Iterator[Memory]:
        self.check(scope)
        where, params = filter_sql(scope, filters)
        with self.conn.cursor(name="mem_export_memories") as cur, self.conn.transaction():
            cur.execute(
                f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.profile = %s AND {where} "
                "ORDER BY m.id".encode(),
                [scope.writes, *params],
            )
            for row in cur:
                yield memory_of(row)

    def iter_documents(self, scope: Scope) -> Iterator[Document]:
        self.check(scope)
        rows = self.x(
            f"SELECT {_DOCUMENT} FROM documents WHERE profile = %s ORDER BY seq", [scope.writes]
        ).fetchall()
        for row in rows:
            yield Document(*row)

    def import_key(self, scope: Scope, message_id: int) -> str | None:
        self.check(scope)
        row = self.x(
            "SELECT import_key FROM messages WHERE id = %s AND profile = %s",
            [_one(storable([message_id])), scope.writes],
        ).fetchone()
        return None if row is None else str(row[0])

    def import_keys(self, scope: Scope) -> set[str]:
        self.check(scope)
        rows = self.x(
            "SELECT import_key FROM messages WHERE import_key IS NOT NULL AND profile = %s",
            [scope.writes],
        ).fetchall()
        return {str(r[0]) for r in rows}

    def message_by_key(self, scope: Scope, key: str) -> StoredMessage | None:
        self.check(scope)
        row = self.x(
            f"SELECT {_MESSAGE} FROM messages WHERE import_key = %s AND profile = %s "
            "ORDER BY id LIMIT 1",
            [key, scope.writes],
        ).fetchone()
        return None if row is None else _message(row)

    def find_memories(
        self, scope: Scope, *, kind: str, content: str, created_at: str | None = None
    ) -> list[int]:
        self.check(scope)
        query = "SELECT id FROM memories WHERE profile = %s AND kind = %s AND content = %s"
        params: list[Any] = [scope.writes, kind, content]
        if created_at is not None:
            query += " AND created_at = %s"
            params.append(created_at)
        return [int(r[0]) for r in self.x(query + " ORDER BY id", params).fetchall()]

    def restore_times(self, scope: Scope, memory_id: int, times: MemoryTimes) -> None:
        self.check(scope)
        t = times
        self.x(
            "UPDATE memories SET updated_at = coalesce(%s, updated_at), last_used_at = %s, "
            "use_count = %s, valid_from = coalesce(%s, valid_from), valid_until = %s, "
            "expires_at = %s WHERE id = %s AND profile = %s",
            [t.updated_at, t.last_used_at, t.use_count, t.valid_from, t.valid_until,
             t.expires_at, _one(storable([memory_id])), scope.writes],
        )  # fmt: skip

    def link_superseded(self, scope: Scope, memory_id: int, by: int) -> None:
        self.check(scope)
        self.x(
            "UPDATE memories SET superseded_by = %s "
            "WHERE id = %s AND profile = %s AND superseded_by IS NULL",
            [by, _one(storable([memory_id])), scope.writes],
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
        with self.transaction(scope):
            if title is not None or updated_at is not None:
                self.x(
                    "UPDATE conversations SET title = coalesce(title, %s), "
                    "updated_at = greatest(updated_at, coalesce(%s, updated_at)) "
                    "WHERE id = %s AND profile = %s",
                    [title, updated_at, *own],
                )
            if summary_upto is not None:
                self.x(
                    "UPDATE conversations SET summary_upto = %s WHERE id = %s AND profile = %s",
                    [summary_upto, *own],
                )
            if summary is None:
                return False
            cur = self.x(
                "UPDATE conversations SET summary = %s WHERE id = %s AND profile = %s "
                "AND summary IS NULL",
                [summary, *own],
            )
        return cur.rowcount > 0

    def import_document(self, scope: Scope, document: Document) -> bool:
        self.check(scope)
        d = document
        cur = self.x(
            "INSERT INTO documents (profile, path, format, hash, size, mtime, chunks, chunker, "
            "added_at, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT (profile, path) DO NOTHING",
            [scope.writes, d.path, d.format, d.hash, d.size, d.mtime, d.chunks, d.chunker,
             d.added_at, d.updated_at],
        )  # fmt: skip
        return cur.rowcount > 0

    def replace_message(
        self, scope: Scope, message_id: int, message: NewMessage, *, reason: str, actor: str
    ) -> str | None:
        m = message
        own = [_one(storable([message_id])), scope.writes]
        with self.transaction(scope):
            row = self.x(
                "UPDATE messages SET role = %s, speaker = %s, content = %s, "
                "created_at = coalesce(%s, created_at), metadata = %s "
                "WHERE id = %s AND profile = %s RETURNING created_at",
                [m.role, m.speaker, m.content, m.created_at or None, Jsonb(m.metadata), *own],
            ).fetchone()
            old = self.x(
                "SELECT id FROM memories WHERE source_message_id = %s AND kind = 'message' "
                "AND profile = %s ORDER BY id LIMIT 1",
                own,
            ).fetchone()
            if old is not None:
                detail = {"kind": "message", "source": "import", "reason": reason}
                _lineage.delete_row(self, int(old[0]), detail=detail, actor=actor)
        return None if row is None else str(row[0])
