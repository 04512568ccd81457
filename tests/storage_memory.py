"""An in-memory StorageBackend: the test double of the storage seam.

A double, but an honest one: scope applied on every read and write, BM25 per
term with the scope's own statistics (FTS5's formula), exact cosine KNN,
lineage-aware forgetting, ids never reused, nested transactions that roll
back. The behavioural suite (tests/test_storage_protocol.py) runs against it
and against SQLite alike, and a PostgreSQL backend will run it too.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from storage_memory_lifecycle import LifecycleMixin
from storage_memory_search import SearchMixin
from storage_memory_transfer import TransferMixin

from memory import timeutil
from memory.errors import NotFoundError, UsageError
from memory.storage import (
    Conversation,
    Counts,
    Document,
    DocumentInfo,
    MemoryFilter,
    MemoryPatch,
    NewEvent,
    NewMemory,
    NewMessage,
    Scope,
    StorageBackend,
)
from memory.storage.records import Event, Memory, Message


class MemoryBackend(LifecycleMixin, TransferMixin, SearchMixin):
    @classmethod
    def open(cls, *, dim: int) -> MemoryBackend:
        return cls(dim)

    def dump(self) -> str:
        """Everything held, as text (the scrub test looks for forgotten words)."""
        return repr(self.s)

    # ------------------------------------------------------------ lifecycle
    def close(self) -> None:
        pass

    def get_meta(self, scope: Scope, key: str) -> str | None:
        return self.s.meta.get(key)

    def set_meta(self, scope: Scope, key: str, value: str) -> None:
        self.s.meta[key] = value

    # -------------------------------------------------------- conversations
    def add_conversation(
        self, scope: Scope, conversation_id: str, *, title: str | None = None, created_at: str = ""
    ) -> bool:
        have = self.s.conversations.get(conversation_id)
        if have is not None:
            if have["profile"] != scope.writes:
                raise UsageError(
                    f"Conversation id {conversation_id!r} is taken: choose another id."
                )
            return False
        stamp = created_at or timeutil.now_iso()
        self.s.conversations[conversation_id] = {
            "profile": scope.writes,
            "title": title,
            "created_at": stamp,
            "updated_at": stamp,
            "summary": None,
            "summary_upto": None,
            "seq": len(self.s.conversations),
        }
        return True

    def _own_conv(self, scope: Scope, cid: str | None) -> dict[str, Any] | None:
        c = self.s.conversations.get(cid or "")
        return c if c is not None and c["profile"] == scope.writes else None

    def _conv(self, cid: str, c: dict[str, Any]) -> Conversation:
        n = sum(
            1
            for m in self.s.messages.values()
            if m.conversation == cid and m.profile == c["profile"]
        )
        return Conversation(
            cid,
            c["profile"],
            c["title"],
            c["created_at"],
            c["updated_at"],
            c["summary"],
            c["summary_upto"],
            n,
        )

    def conversation(self, scope: Scope, conversation_id: str) -> Conversation | None:
        c = self._own_conv(scope, conversation_id)
        return None if c is None else self._conv(conversation_id, c)

    def has_conversation(self, scope: Scope, conversation_id: str) -> bool:
        return self._own_conv(scope, conversation_id) is not None

    def conversations(self, scope: Scope, *, limit: int = 50) -> list[Conversation]:
        own = [(cid, c) for cid, c in self.s.conversations.items() if c["profile"] == scope.writes]
        own.sort(key=lambda kv: (kv[1]["updated_at"], kv[1]["seq"]), reverse=True)
        return [self._conv(cid, c) for cid, c in own[:limit]]

    def set_summary(
        self, scope: Scope, conversation_id: str, summary: str | None, upto: int | None
    ) -> bool:
        c = self._own_conv(scope, conversation_id)
        if c is not None:
            c["summary"], c["summary_upto"] = summary, upto
        return c is not None

    def set_title(self, scope: Scope, conversation_id: str, title: str | None) -> bool:
        c = self._own_conv(scope, conversation_id)
        if c is not None:
            c["title"] = title
        return c is not None

    # ------------------------------------------------------------- messages
    def add_message(self, scope: Scope, message: NewMessage) -> int:
        c = self._own_conv(scope, message.conversation)
        if c is None:
            raise NotFoundError(
                f"No conversation {message.conversation!r} in profile {scope.writes!r}: "
                "see `mem conversations` for ids."
            )
        stamp = message.created_at or timeutil.now_iso()
        mid = self._next("message")
        self.s.messages[mid] = Message(
            mid,
            message.conversation,
            message.role,
            message.content,
            stamp,
            message.speaker,
            message.external_id,
            scope.writes,
        )
        self.s.message_meta[mid] = copy.deepcopy(message.metadata)
        self.s.message_keys[mid] = message.import_key
        c["updated_at"] = max(c["updated_at"], stamp)
        if message.import_key is not None:
            self.s.import_keys[message.import_key] = mid
        return mid

    def messages(
        self, scope: Scope, conversation_id: str, *, after_id: int = 0, limit: int | None = None
    ) -> list[Message]:
        found = [
            m
            for i, m in sorted(self.s.messages.items())
            if m.conversation == conversation_id and m.profile == scope.writes and i > after_id
        ]
        return found[-limit:] if limit else found

    # ------------------------------------------------------------- memories
    def add_messages(
        self,
        scope: Scope,
        batch: Sequence[tuple[NewMessage, NewMemory | None, Sequence[float]]],
    ) -> list[int]:
        ids: list[int] = []
        with self.transaction(scope):
            for message, memory, vector in batch:
                ids.append(self.add_message(scope, message))
                if memory is not None:
                    self.add_memory(scope, replace(memory, source_message_id=ids[-1]), vector)
        return ids

    def add_memory(self, scope: Scope, memory: NewMemory, vector: Sequence[float]) -> int:
        m = memory
        m.check()
        vec = self._vector(vector)
        if m.source_message_id is not None and self.message(scope, m.source_message_id) is None:
            raise NotFoundError(f"No message with id {m.source_message_id}.")
        if m.conversation is not None and self._own_conv(scope, m.conversation) is None:
            raise NotFoundError(f"No conversation {m.conversation!r}.")
        stamp = m.created_at or timeutil.now_iso()
        mid = self._next("memory")
        self.s.memories[mid] = Memory(
            mid,
            scope.writes,
            m.kind,
            m.content,
            m.source,
            m.importance,
            m.confidence,
            stamp,
            timeutil.now_iso(),
            m.source_message_id,
            m.conversation,
            m.external_id,
            m.speaker,
            valid_from=stamp,
            expires_at=m.expires_at,
            metadata=json.loads(json.dumps(m.metadata)),
        )
        self.s.vectors[mid] = vec
        return mid

    def update_memory(
        self,
        scope: Scope,
        memory_id: int,
        patch: MemoryPatch,
        vector: Sequence[float] | None = None,
    ) -> Memory:
        if patch.content is not None and vector is None:
            raise UsageError("A new text needs its vector.")
        m = self._own(scope, memory_id)
        now = timeutil.now_iso()
        changes: dict[str, Any] = {"updated_at": now}
        if patch.content is not None and vector is not None:
            changes["content"] = patch.content.strip()
            self.s.vectors[memory_id] = self._vector(vector)
        if patch.importance is not None:
            changes["importance"] = patch.importance
        if patch.superseded_by is not None:
            self.memory(scope, patch.superseded_by)
            changes["superseded_by"] = patch.superseded_by
            changes["valid_until"] = patch.valid_until or now
        elif patch.valid_until is not None:
            changes["valid_until"] = patch.valid_until
        if patch.clear_supersession:
            changes["superseded_by"] = changes["valid_until"] = None
        if patch.expires_at is not None:
            changes["expires_at"] = patch.expires_at
        if patch.metadata is not None:
            changes["metadata"] = json.loads(json.dumps(patch.metadata))
        self.s.memories[memory_id] = replace(m, **changes)
        return self.memory(scope, memory_id)

    def touch(self, scope: Scope, ids: Iterable[int], at: str) -> None:
        for mid in set(ids):
            m = self._readable(scope, mid)
            if m is not None:
                self.s.memories[mid] = replace(m, use_count=m.use_count + 1, last_used_at=at)

    def memories(self, scope: Scope, ids: Iterable[int]) -> list[Memory]:
        found = (self._readable(scope, i) for i in dict.fromkeys(ids))
        return [copy.deepcopy(m) for m in found if m is not None]

    def list_memories(
        self, scope: Scope, filters: MemoryFilter, *, limit: int | None = None
    ) -> list[Memory]:
        found = list(reversed(self._passing(scope, filters)))
        return copy.deepcopy(found[:limit] if limit else found)

    def counts(self, scope: Scope) -> Counts:
        kinds: dict[str, tuple[int, int]] = {}
        for m in self.s.memories.values():
            if scope.reads(m.profile):
                a, i = kinds.get(m.kind, (0, 0))
                kinds[m.kind] = (a + 1, i) if m.active else (a, i + 1)
        own = scope.writes
        messages = sum(1 for m in self.s.messages.values() if m.profile == own)
        convs = sum(1 for c in self.s.conversations.values() if c["profile"] == own)
        return Counts(dict(sorted(kinds.items())), messages, convs)

    def delete_memories(
        self, scope: Scope, ids: Iterable[int], *, reason: str, actor: str = "user"
    ) -> list[int]:
        done = []
        with self.transaction(scope):
            for mid in ids:
                m = self.s.memories.get(mid)
                if m is not None and m.profile == scope.writes:
                    self._delete(mid, {"kind": m.kind, "source": m.source, "reason": reason}, actor)
                    done.append(mid)
        return done

    # ------------------------------------------------------------ documents
    def put_document(self, scope: Scope, document: DocumentInfo, *, at: str = "") -> None:
        stamp = at or timeutil.now_iso()
        key = (scope.writes, document.path)
        old = self.s.documents.get(key)
        d = document
        self.s.documents[key] = Document(
            d.path, scope.writes, d.format, d.hash, d.size, d.mtime, d.chunks, d.chunker,
            old.added_at if old else stamp, stamp,
        )  # fmt: skip

    def documents(self, scope: Scope, *, path: str | None = None) -> list[Document]:
        found = [
            d
            for (p, _), d in self.s.documents.items()
            if scope.reads(p) and (path is None or d.path == path)
        ]
        return sorted(found, key=lambda d: (d.path, d.profile))

    def remove_document(self, scope: Scope, path: str, *, reason: str) -> int:
        with self.transaction(scope):
            ids = [
                i
                for i, m in sorted(self.s.memories.items())
                if m.profile == scope.writes
                and m.kind == "document"
                and m.metadata.get("path") == path
            ]
            for i in ids:
                self._delete(i, {"kind": "document", "source": "document", "reason": reason})
            had = self.s.documents.pop((scope.writes, path), None)
            if ids or had:
                detail = {"document": path, "profile": scope.writes, "chunks": len(ids)}
                self._event(None, "forget", "user", None, None, detail)
        return len(ids)

    # ---------------------------------------------------------------- audit
    def add_event(self, scope: Scope, event: NewEvent) -> int:
        detail = dict(event.detail)
        if event.memory_id is None:
            detail["profile"] = scope.writes
        else:
            self._own(scope, event.memory_id)
        return self._event(
            event.memory_id, event.event, event.actor, event.before, event.after, detail
        )

    def events(self, scope: Scope, memory_id: int) -> list[Event]:
        trail = [e for _, e in sorted(self.s.events.items()) if e.memory_id == memory_id]
        forgot = (e.detail.get("profile") for e in trail if e.event == "forget")
        owner = next(forgot, None)
        if memory_id in self.s.memories:
            owner = self.s.memories[memory_id].profile
        if owner is None or not scope.reads(owner):
            raise NotFoundError(f"No memory with id {memory_id}: see `mem list` for ids.")
        return copy.deepcopy(trail)

    def mark_event(self, scope: Scope, event_id: int, detail: Mapping[str, object]) -> None:
        e = self.s.events.get(event_id)
        if e is None or self._owner(e) != scope.writes:
            raise NotFoundError(f"No event with id {event_id}.")
        self.s.events[event_id] = replace(e, detail={**e.detail, **detail})

    def namespaces(self, scope: Scope) -> list[str]:
        found = {m.profile for m in self.s.memories.values()}
        found |= {str(c["profile"]) for c in self.s.conversations.values()}
        found |= {d.profile for d in self.s.documents.values()}
        return sorted(found)

    def change_mark(self, scope: Scope) -> int:
        return self.s.last["event"]

    def last_events(
        self,
        scope: Scope,
        *,
        events: Sequence[str],
        limit: int = 1,
        batch: str | None = None,
    ) -> list[Event]:
        found = [
            e
            for _, e in sorted(self.s.events.items(), reverse=True)
            if e.memory_id in self.s.memories
            and self.s.memories[e.memory_id].profile == scope.writes
            and e.event in events
            and e.actor != "undo"
            and "undone" not in e.detail
            and (batch is None or e.detail.get("batch") == batch)
        ]
        return copy.deepcopy(found[:limit])


def _conforms(backend: MemoryBackend) -> StorageBackend:
    return backend
