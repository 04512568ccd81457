"""Conversations and messages of one namespace, over PostgreSQL.

Conversation ids are one key space (the primary key), as in SQLite: an id
another profile holds is refused without naming it, and never joined.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from ... import timeutil
from ...errors import NotFoundError, UsageError
from ..records import NEW_MESSAGE_COLUMNS, Conversation, Message, NewMessage
from ..scope import Scope
from .base import Base
from .filters import storable

_MESSAGE_COLUMNS = "id, conversation_id, role, content, created_at, speaker, external_id, profile"


class ConversationsMixin(Base):
    def add_conversation(
        self, scope: Scope, conversation_id: str, *, title: str | None = None, created_at: str = ""
    ) -> bool:
        stamp = created_at or timeutil.now_iso()
        with self.transaction(scope):
            cur = self.x(
                "INSERT INTO conversations (id, profile, title, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                [conversation_id, scope.writes, title, stamp, stamp],
            )
        if cur.rowcount:
            return True
        if not self._own_conversation(scope, conversation_id):
            # Another namespace's id: refused without a word about whose.
            raise UsageError(f"Conversation id {conversation_id!r} is taken: choose another id.")
        return False

    def _own_conversation(self, scope: Scope, conversation_id: str | None) -> bool:
        row = self.x(
            "SELECT 1 FROM conversations WHERE id = %s AND profile = %s",
            [conversation_id, scope.writes],
        ).fetchone()
        return row is not None

    def conversation(self, scope: Scope, conversation_id: str) -> Conversation | None:
        found = self._conversations(scope, "c.id = %s", [conversation_id], 1)
        return found[0] if found else None

    def has_conversation(self, scope: Scope, conversation_id: str) -> bool:
        self.check(scope)
        row = self.x(
            "SELECT 1 FROM conversations WHERE id = %s AND profile = %s",
            [conversation_id, scope.writes],
        ).fetchone()
        return row is not None

    def conversations(self, scope: Scope, *, limit: int = 50) -> list[Conversation]:
        return self._conversations(scope, "true", [], limit)

    def _conversations(
        self, scope: Scope, where: str, params: list[Any], limit: int
    ) -> list[Conversation]:
        self.check(scope)
        rows = self.x(
            "SELECT c.id, c.profile, c.title, c.created_at, c.updated_at, c.summary, "
            "c.summary_upto, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id "
            f"AND m.profile = c.profile) FROM conversations c WHERE c.profile = %s AND {where} "
            "ORDER BY c.updated_at DESC, c.seq DESC LIMIT %s",
            [scope.writes, *params, limit],
        ).fetchall()
        return [Conversation(*r) for r in rows]

    def set_summary(
        self, scope: Scope, conversation_id: str, summary: str | None, upto: int | None
    ) -> bool:
        self.check(scope)
        cur = self.x(
            "UPDATE conversations SET summary = %s, summary_upto = %s "
            "WHERE id = %s AND profile = %s",
            [summary, upto, conversation_id, scope.writes],
        )
        return bool(cur.rowcount)

    def set_title(self, scope: Scope, conversation_id: str, title: str | None) -> bool:
        self.check(scope)
        cur = self.x(
            "UPDATE conversations SET title = %s WHERE id = %s AND profile = %s",
            [title, conversation_id, scope.writes],
        )
        return bool(cur.rowcount)

    # ------------------------------------------------------------- messages
    def add_message(self, scope: Scope, message: NewMessage) -> int:
        stamp = message.created_at or timeutil.now_iso()
        with self.transaction(scope):
            if not self._own_conversation(scope, message.conversation):
                raise NotFoundError(
                    f"No conversation {message.conversation!r} in profile {scope.writes!r}: "
                    "see `mem conversations` for ids."
                )
            row = self.x(
                f"INSERT INTO messages ({NEW_MESSAGE_COLUMNS}, metadata) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
                [*message.values(scope.writes, stamp), Jsonb(message.metadata)],
            ).fetchone()
            self.x(
                "UPDATE conversations SET updated_at = greatest(updated_at, %s) "
                "WHERE id = %s AND profile = %s",
                [stamp, message.conversation, scope.writes],
            )
        assert row is not None
        return int(row[0])

    def message(self, scope: Scope, message_id: int) -> Message | None:
        self.check(scope)
        if not storable([message_id]):
            return None
        row = self.x(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = %s AND profile = %s",
            [message_id, scope.writes],
        ).fetchone()
        return None if row is None else Message(*row)

    def messages(
        self, scope: Scope, conversation_id: str, *, after_id: int = 0, limit: int | None = None
    ) -> list[Message]:
        self.check(scope)
        query = (
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = %s "
            "AND profile = %s AND id > %s ORDER BY id DESC"
        )
        if limit:
            query += f" LIMIT {int(limit)}"
        rows = self.x(query, [conversation_id, scope.writes, after_id]).fetchall()
        return [Message(*r) for r in reversed(rows)]
