"""The lifecycle calls of the in-memory backend (see the end of
memory/storage/protocol.py): retention, message tags, document chunks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from storage_memory_core import Core

from memory.storage import Scope
from memory.storage.records import Message


class LifecycleMixin(Core):
    def memory_ids(
        self, scope: Scope, *, kind: str | None = None, before: str | None = None
    ) -> list[int]:
        return [
            i
            for i, m in sorted(self.s.memories.items())
            if m.profile == scope.writes
            and (kind is None or m.kind == kind)
            and (before is None or m.created_at < before)
        ]

    def expired_ids(self, scope: Scope, at: str) -> list[int]:
        return [
            i
            for i, m in sorted(self.s.memories.items())
            if m.profile == scope.writes
            and m.kind != "message"
            and m.expires_at is not None
            and m.expires_at <= at
        ]

    def message_ids(self, scope: Scope, *, before: str | None = None) -> list[int]:
        return [
            i
            for i, m in sorted(self.s.messages.items())
            if m.profile == scope.writes and (before is None or m.created_at < before)
        ]

    def expire(self, scope: Scope, memory_ids: Sequence[int], message_ids: Sequence[int]) -> None:
        with self.transaction(scope):
            for mid in memory_ids:
                m = self.s.memories.get(mid)
                if m is not None and m.profile == scope.writes:
                    self._delete(mid, {"kind": m.kind, "source": m.source, "with_source": False})
            for msg in message_ids:
                if self.message(scope, msg) is None:
                    continue
                for mid, m in sorted(self.s.memories.items()):
                    if m.source_message_id == msg and m.kind == "message":
                        self._delete(mid, {"kind": m.kind, "source": m.source, "with_source": True})
                del self.s.messages[msg]

    def used_ids(self, scope: Scope, *, min_uses: int = 1) -> list[int]:
        used = [
            m
            for m in self.s.memories.values()
            if m.profile == scope.writes
            and m.use_count >= max(min_uses, 1)
            and m.superseded_by is None
            and m.valid_until is None
        ]
        return [m.id for m in sorted(used, key=lambda m: (-m.use_count, m.id))]

    def untagged_messages(self, scope: Scope, conversation_id: str, key: str) -> list[Message]:
        return [
            m
            for i, m in sorted(self.s.messages.items())
            if m.profile == scope.writes
            and m.conversation == conversation_id
            and self.s.message_meta.get(i, {}).get(key) is None
        ]

    def tag_messages(self, scope: Scope, ids: Iterable[int], key: str) -> None:
        for i in ids:
            if self.message(scope, i) is not None:
                self.s.message_meta.setdefault(i, {})[key] = 1

    def document_chunks(self, scope: Scope, path: str) -> list[int]:
        return [
            i
            for i, m in sorted(self.s.memories.items())
            if m.profile == scope.writes and m.kind == "document" and m.metadata.get("path") == path
        ]

    def touch_document(
        self, scope: Scope, path: str, *, size: int, mtime: float | None = None
    ) -> None:
        d = self.s.documents.get((scope.writes, path))
        if d is not None:
            self.s.documents[(scope.writes, path)] = replace(
                d, size=size, mtime=d.mtime if mtime is None else mtime
            )

    def checkpoint(self, scope: Scope) -> None:
        pass  # no log on the side
