"""The transfer calls of the in-memory backend (``mem export`` / ``mem import``;
see the end of memory/storage/protocol.py)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace

from storage_memory_core import Core, _passes

from memory import timeutil
from memory.storage import Conversation, Document, MemoryFilter, NewMessage, Scope
from memory.storage.records import Memory
from memory.storage.transfer import MemoryTimes, StoredMessage


class TransferMixin(Core):
    def _stored(self, mid: int) -> StoredMessage:
        m = self.s.messages[mid]
        return StoredMessage(
            m.id,
            m.conversation,
            m.role,
            m.content,
            m.created_at,
            m.speaker,
            m.external_id,
            self.s.message_keys.get(mid),
            copy.deepcopy(self.s.message_meta.get(mid, {})),
        )

    def iter_conversations(self, scope: Scope) -> Iterator[Conversation]:
        own = [(c["seq"], cid, c) for cid, c in self.s.conversations.items()]
        for _, cid, c in sorted(own, key=lambda t: t[0]):
            if c["profile"] == scope.writes:
                yield Conversation(
                    cid, c["profile"], c["title"], c["created_at"], c["updated_at"],
                    c["summary"], c["summary_upto"],
                )  # fmt: skip

    def iter_messages(self, scope: Scope) -> Iterator[StoredMessage]:
        for mid, m in sorted(self.s.messages.items()):
            if m.profile == scope.writes:
                yield self._stored(mid)

    def iter_memories(self, scope: Scope, filters: MemoryFilter) -> Iterator[Memory]:
        now = filters.now or timeutil.now_iso()
        for _, m in sorted(self.s.memories.items()):
            if m.profile == scope.writes and _passes(m, filters, now):
                yield copy.deepcopy(m)

    def iter_documents(self, scope: Scope) -> Iterator[Document]:
        for (profile, _), d in list(self.s.documents.items()):
            if profile == scope.writes:
                yield d

    def import_key(self, scope: Scope, message_id: int) -> str | None:
        return (
            None if self.message(scope, message_id) is None else self._stored(message_id).import_key
        )

    def import_keys(self, scope: Scope) -> set[str]:
        return {
            k
            for i, k in self.s.message_keys.items()
            if k is not None and i in self.s.messages and self.s.messages[i].profile == scope.writes
        }

    def message_by_key(self, scope: Scope, key: str) -> StoredMessage | None:
        for mid in self.s.messages:
            if self.message(scope, mid) is not None and self.s.message_keys.get(mid) == key:
                return self._stored(mid)
        return None

    def find_memories(
        self, scope: Scope, *, kind: str, content: str, created_at: str | None = None
    ) -> list[int]:
        return [
            i
            for i, m in sorted(self.s.memories.items())
            if m.profile == scope.writes
            and m.kind == kind
            and m.content == content
            and (created_at is None or m.created_at == created_at)
        ]

    def restore_times(self, scope: Scope, memory_id: int, times: MemoryTimes) -> None:
        m = self.s.memories.get(memory_id)
        if m is None or m.profile != scope.writes:
            return
        t = times
        self.s.memories[memory_id] = replace(
            m,
            updated_at=t.updated_at or m.updated_at,
            last_used_at=t.last_used_at,
            use_count=t.use_count,
            valid_from=t.valid_from or m.valid_from,
            valid_until=t.valid_until,
            expires_at=t.expires_at,
        )

    def link_superseded(self, scope: Scope, memory_id: int, by: int) -> None:
        m = self.s.memories.get(memory_id)
        if m is not None and m.profile == scope.writes and m.superseded_by is None:
            self.s.memories[memory_id] = replace(m, superseded_by=by)

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
        c = self.s.conversations.get(conversation_id)
        if c is None or c["profile"] != scope.writes:
            return False
        c["title"] = c["title"] if c["title"] is not None else title
        c["updated_at"] = max(c["updated_at"], updated_at or c["updated_at"])
        if summary_upto is not None:
            c["summary_upto"] = summary_upto
        if summary is None or c["summary"] is not None:
            return False
        c["summary"] = summary
        return True

    def import_document(self, scope: Scope, document: Document) -> bool:
        key = (scope.writes, document.path)
        if key in self.s.documents:
            return False
        self.s.documents[key] = replace(document, profile=scope.writes)
        return True

    def replace_message(
        self, scope: Scope, message_id: int, message: NewMessage, *, reason: str, actor: str
    ) -> str | None:
        old = self.message(scope, message_id)
        if old is None:
            return None
        with self.transaction(scope):
            self.s.messages[message_id] = replace(
                old,
                role=message.role,
                speaker=message.speaker,
                content=message.content,
                created_at=message.created_at or old.created_at,
            )
            self.s.message_meta[message_id] = copy.deepcopy(message.metadata)
            for mid, m in sorted(self.s.memories.items()):
                if m.source_message_id == message_id and m.kind == "message":
                    detail = {"kind": "message", "source": "import", "reason": reason}
                    self._delete(mid, detail, actor)
                    break
        return self.s.messages[message_id].created_at
