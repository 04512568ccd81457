"""Conversations and the episodic log (messages) of one profile, over the
backend: ids are chosen here (a fresh conversation id, an import key), the
secret gate redacts titles and summaries, and a logged message is indexed as
a ``message`` memory in the same transaction."""

from __future__ import annotations

import secrets
from typing import Any

from memory import timeutil
from memory.errors import NotFoundError
from memory.privacy.secrets_gate import apply
from memory.records import Message
from memory.storage.records import NewMessage
from memory.store.writing import Writing


class Conversations(Writing):
    def new_conversation(
        self,
        title: str | None = None,
        *,
        conversation_id: str | None = None,
        created_at: str | None = None,
    ) -> str:
        cid = conversation_id or f"c{secrets.token_hex(4)}"
        if title:
            title = apply(title, self.secrets).text
        stamp = created_at or timeutil.now_iso()
        # Another profile's id is refused, never joined (see conversation_id_for).
        self.backend.add_conversation(self.scope, cid, title=title, created_at=stamp)
        return cid

    def conversation_id_for(self, conversation_id: str) -> str:
        """The id under which this profile keeps a file's conversation
        ``conversation_id``: that id, unless another profile has it, then
        ``ID@PROFILE`` (``~2``, ``~3`` … after that). Conversation ids are one
        namespace in the file; an import must neither join another profile's
        conversation nor be refused in words that name its owner."""
        candidate, n = conversation_id, 1
        while self.backend.taken(self.scope, conversation=candidate):
            n += 1
            candidate = f"{conversation_id}@{self.profile}" + (f"~{n - 1}" if n > 2 else "")
        return candidate

    def import_key_for(self, key: str) -> str:
        """The key under which this profile keeps a message with import key
        ``key``: like :meth:`conversation_id_for`, another profile's key is
        never matched (no "skipped" for its messages, no link to them)."""
        candidate, n = key, 1
        while self.backend.taken(self.scope, import_key=candidate):
            n += 1
            candidate = f"{key}\x1e{self.profile}" + (f"~{n - 1}" if n > 2 else "")
        return candidate

    def message_id_for(self, key: str) -> int | None:
        """This profile's message with import key ``key`` (an export's
        ``source_message``), or None."""
        return self.backend.message_id(self.scope, self.import_key_for(key))

    def conversation_exists(self, conversation_id: str) -> bool:
        return self.backend.has_conversation(self.scope, conversation_id)

    def require_conversation(self, conversation_id: str) -> None:
        if not self.conversation_exists(conversation_id):
            raise NotFoundError(
                f"No conversation {conversation_id!r} in profile {self.profile!r}: "
                "see `mem conversations` for ids."
            )

    def last_conversation(self) -> str | None:
        found = self.backend.conversations(self.scope, limit=1)
        return found[0].id if found else None

    def conversations(self, limit: int = 50) -> list[dict[str, Any]]:
        return [
            {
                "id": c.id,
                "title": c.title,
                "created_at": c.created_at,
                "updated_at": c.updated_at,
                "messages": c.messages,
            }
            for c in self.backend.conversations(self.scope, limit=limit)
        ]

    def summary(self, conversation_id: str) -> tuple[str | None, int | None]:
        found = self.backend.conversation(self.scope, conversation_id)
        return (None, None) if found is None else (found.summary, found.summary_upto)

    def set_summary(self, conversation_id: str, summary: str, upto: int) -> None:
        if self.secrets != "allow":  # a summary is derived, so redacted, never refused
            summary = apply(summary, "redact").text
        with self.backend.transaction(self.scope):
            self.backend.set_summary(self.scope, conversation_id, summary, upto)

    def log_message(
        self,
        conversation_id: str,
        role: str,
        content: str,
        *,
        speaker: str | None = None,
        created_at: str | None = None,
        external_id: str | None = None,
        import_key: str | None = None,
        index: bool = True,
        vector: list[float] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        """Append a message to the episodic log and index it for search."""
        stamp = created_at or timeutil.now_iso()
        # Every message gets a stable key so an export re-imported here adds nothing.
        import_key = import_key or f"{conversation_id}\x1f@{secrets.token_hex(8)}"
        if index and content.strip() and vector is None:
            vector = self.embedder.embed([content.strip()])[0]  # before the write lock
        message = NewMessage(
            conversation_id,
            role,
            content,
            created_at=stamp,
            speaker=speaker,
            external_id=external_id,
            import_key=import_key,
            metadata=metadata or {},
        )
        with self.backend.transaction(self.scope):
            message_id = self.backend.add_message(self.scope, message)
            if index and content.strip():
                self.add_memory(
                    content,
                    kind="message",
                    source=f"message:{role}",
                    source_message_id=message_id,
                    conversation=conversation_id,
                    external_id=external_id,
                    speaker=speaker or role,
                    created_at=stamp,
                    vector=vector,
                    audit=False,
                )
        return message_id

    def messages(
        self, conversation_id: str, *, after_id: int | None = None, limit: int | None = None
    ) -> list[Message]:
        """Messages of a conversation in order (the last ``limit`` when given)."""
        return self.backend.messages(
            self.scope, conversation_id, after_id=after_id or 0, limit=limit
        )

    def message(self, message_id: int) -> Message | None:
        return self.backend.message(self.scope, message_id)
