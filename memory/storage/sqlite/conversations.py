"""Conversations and messages of one namespace, over SQLite.

Conversation ids are one namespace in the file (its primary key): an id
another profile holds is refused without naming it, and never joined.
"""

from __future__ import annotations

import json
from typing import Any

from memory import timeutil
from memory.errors import NotFoundError, UsageError
from memory.storage.records import NEW_MESSAGE_COLUMNS, Conversation, Message, NewMessage
from memory.storage.scope import Scope
from memory.storage.sqlite import lineage as _lineage
from memory.storage.sqlite.db import Connection, transaction

_MESSAGE_COLUMNS = "id, conversation_id, role, content, created_at, speaker, external_id, profile"


class ConversationsMixin:
    conn: Connection

    # -------------------------------------------------------- conversations
    def add_conversation(
        self, scope: Scope, conversation_id: str, *, title: str | None = None, created_at: str = ""
    ) -> bool:
        stamp = created_at or timeutil.now_iso()
        with transaction(self.conn):
            cur = self.conn.execute(
                "INSERT INTO conversations(id, profile, title, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                [conversation_id, scope.writes, title, stamp, stamp],
            )
        if cur.rowcount:
            return True
        if not self._own_conversation(scope, conversation_id):
            # Another namespace's id: refused without a word about whose.
            raise UsageError(f"Conversation id {conversation_id!r} is taken: choose another id.")
        return False

    def _own_conversation(self, scope: Scope, conversation_id: str | None) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM conversations WHERE id = ? AND profile = ?",
            [conversation_id, scope.writes],
        ).fetchone()
        return row is not None

    def conversation(self, scope: Scope, conversation_id: str) -> Conversation | None:
        found = self._conversations(scope, "c.id = ?", [conversation_id], 1)
        return found[0] if found else None

    def has_conversation(self, scope: Scope, conversation_id: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM conversations WHERE id = ? AND profile = ?",
            [conversation_id, scope.writes],
        ).fetchone()
        return row is not None

    def conversations(self, scope: Scope, *, limit: int = 50) -> list[Conversation]:
        return self._conversations(scope, "1", [], limit)

    def _conversations(
        self, scope: Scope, where: str, params: list[Any], limit: int
    ) -> list[Conversation]:
        rows = self.conn.execute(
            "SELECT c.id, c.profile, c.title, c.created_at, c.updated_at, c.summary, "
            "c.summary_upto, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id "
            f"AND m.profile = c.profile) FROM conversations c WHERE c.profile = ? AND {where} "
            "ORDER BY c.updated_at DESC, c.rowid DESC LIMIT ?",
            [scope.writes, *params, limit],
        ).fetchall()
        return [Conversation(*r) for r in rows]

    def set_summary(
        self, scope: Scope, conversation_id: str, summary: str | None, upto: int | None
    ) -> bool:
        cur = self.conn.execute(
            "UPDATE conversations SET summary = ?, summary_upto = ? WHERE id = ? AND profile = ?",
            [summary, upto, conversation_id, scope.writes],
        )
        return bool(cur.rowcount)

    def set_title(self, scope: Scope, conversation_id: str, title: str | None) -> bool:
        cur = self.conn.execute(
            "UPDATE conversations SET title = ? WHERE id = ? AND profile = ?",
            [title, conversation_id, scope.writes],
        )
        return bool(cur.rowcount)

    # ------------------------------------------------------------- messages
    def add_message(self, scope: Scope, message: NewMessage) -> int:
        with transaction(self.conn):
            return self._add_message(scope, message, set())

    def _add_message(self, scope: Scope, message: NewMessage, owned: set[str]) -> int:
        """:meth:`add_message` inside the caller's transaction; ``owned``: the
        conversations this transaction already found the scope's (an import's batch
        asks once per conversation, not per line)."""
        stamp = message.created_at or timeutil.now_iso()
        if message.conversation not in owned:
            if not self._own_conversation(scope, message.conversation):
                raise NotFoundError(
                    f"No conversation {message.conversation!r} in profile "
                    f"{scope.writes!r}: see `mem conversations` for ids."
                )
            owned.add(message.conversation)
        floor = self.conn.execute(
            "SELECT max((SELECT coalesce(max(CAST(value AS INTEGER)), 0) FROM meta "
            "WHERE key = ?), (SELECT coalesce(max(id), 0) FROM messages))",
            [_lineage.MESSAGE_FLOOR_KEY],
        ).fetchone()[0]
        cur = self.conn.execute(
            f"INSERT INTO messages(id, {NEW_MESSAGE_COLUMNS}, metadata) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            [int(floor) + 1, *message.values(scope.writes, stamp), json.dumps(message.metadata)],
        )
        self.conn.execute(
            "UPDATE conversations SET updated_at = max(updated_at, ?) WHERE id = ?",
            [stamp, message.conversation],
        )
        return int(cur.lastrowid)

    def message(self, scope: Scope, message_id: int) -> Message | None:
        if not _lineage.storable_id(message_id):
            return None
        row = self.conn.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ? AND profile = ?",
            [message_id, scope.writes],
        ).fetchone()
        return None if row is None else Message(*row)

    def messages(
        self, scope: Scope, conversation_id: str, *, after_id: int = 0, limit: int | None = None
    ) -> list[Message]:
        sql = (
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND profile = ? "
            "AND id > ? ORDER BY id DESC"
        )
        if limit:
            sql += f" LIMIT {int(limit)}"
        rows = self.conn.execute(sql, [conversation_id, scope.writes, after_id]).fetchall()
        return [Message(*r) for r in reversed(rows)]

    def taken(
        self, scope: Scope, *, conversation: str | None = None, import_key: str | None = None
    ) -> bool:
        sql = (
            "SELECT profile FROM conversations WHERE id = ?"
            if import_key is None
            else "SELECT profile FROM messages WHERE import_key = ?"
        )
        row = self.conn.execute(sql, [conversation if import_key is None else import_key])
        found = row.fetchone()
        return found is not None and found[0] != scope.writes

    def message_id(self, scope: Scope, import_key: str) -> int | None:
        row = self.conn.execute(
            "SELECT id FROM messages WHERE import_key = ? AND profile = ?",
            [import_key, scope.writes],
        ).fetchone()
        return None if row is None else int(row[0])
