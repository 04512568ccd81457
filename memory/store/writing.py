"""Writing memories: the policy above the seam (the secret gate, validation,
the audit of adds and updates, embedding before any write lock) over the
backend's ``add_memory``, ``update_memory``, ``touch`` and deletions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, cast

from memory import timeutil
from memory.errors import EmbedderMismatchError, NotFoundError, UsageError
from memory.privacy.secrets_gate import apply, apply_record
from memory.records import KINDS, Memory
from memory.storage.records import MemoryPatch, NewEvent, NewMemory
from memory.storage.scope import Scope
from memory.store.base import StoreBase


class Writing(StoreBase):
    # ------------------------------------------------------------------ audit
    def _event(
        self,
        memory_id: int | None,
        event: str,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        detail: dict[str, Any] | None = None,
        actor: str = "user",
        scope: Scope | None = None,
    ) -> None:
        if self.secrets != "allow":  # events are stored strings too; never refused here
            gated = apply_record({"b": before, "a": after, "d": detail}, "redact").record
            before, after, detail = gated["b"], gated["a"], gated["d"]
        new = NewEvent(memory_id, event, actor, before, after, detail or {})
        if scope is None and memory_id is None:  # filed under the namespace it names
            scope = self.writer(str((detail or {}).get("profile") or self.profile))
        self.backend.add_event(scope or self.scope, new)

    def _check_embedder(self, scope: Scope) -> None:
        """Inside the write: the vectors are still this embedder's."""
        stored = self.backend.get_meta(scope, "embedder")
        if stored != self.embedder.name:  # a reindex finished meanwhile
            raise EmbedderMismatchError(
                f"{self.path} was reindexed with {stored} while this command ran: run it again."
            )

    # ---------------------------------------------------------------- writing
    def add_memory(
        self,
        content: str,
        *,
        kind: str = "fact",
        source: str = "user",
        importance: float = 0.5,
        confidence: float = 1.0,
        profile: str | None = None,
        source_message_id: int | None = None,
        conversation: str | None = None,
        external_id: str | None = None,
        speaker: str | None = None,
        created_at: str | None = None,
        metadata: dict[str, Any] | None = None,
        vector: list[float] | None = None,
        actor: str = "user",
        audit: bool = True,
        detail: dict[str, Any] | None = None,
        stored_vector: list[float] | None = None,
    ) -> int:
        """Insert one memory with its keyword and vector entries; returns its id.

        ``vector`` is the embedding of ``content`` (dropped if the secret gate
        changes the text); ``stored_vector`` that of :meth:`stored_text`, kept
        either way. A caller inside a transaction passes one of them, so that
        no embedding call (an HTTP request for a provider) holds the write lock.
        """
        content = content.strip()
        if not content:
            raise UsageError("Nothing to remember: give some text.")
        if kind not in KINDS:
            raise UsageError(f"Unknown kind {kind!r}: use one of {', '.join(KINDS)}.")
        if kind != "message":  # the raw log is governed by retention, not the gate
            record = {"content": content, "source": source, "speaker": speaker}
            gated = apply_record({**record, "metadata": metadata or {}}, self.secrets)
            if gated.findings:
                content, source = gated.record["content"], gated.record["source"]
                speaker = gated.record["speaker"]
                said = (metadata or {}).get("redacted")
                earlier = [str(x) for x in said] if isinstance(said, list) else []
                found = earlier + [f for f in gated.findings if f not in earlier]
                metadata = {**gated.record["metadata"], "redacted": found}
                vector = None
        for label, value in (("importance", importance), ("confidence", confidence)):
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"Invalid {label} {value}: use a number from 0 to 1.")
        stamp = created_at or timeutil.now_iso()
        vec = stored_vector if stored_vector is not None else vector
        if vec is None:
            vec = self.embedder.embed([content])[0]
        new = NewMemory(
            content,
            kind=kind,
            source=source,
            created_at=stamp,
            importance=importance,
            confidence=confidence,
            source_message_id=source_message_id,
            conversation=conversation,
            external_id=external_id,
            speaker=speaker,
            metadata=metadata or {},
        )
        scope = self.writer(profile or self.profile)
        with self.backend.transaction(scope):
            self._check_embedder(scope)
            try:
                memory_id = self.backend.add_memory(scope, new, vec)
            except NotFoundError:
                # A link to a message of another namespace is not kept (lineage
                # stays within one; forgetting never followed it, export left it out).
                mid = new.source_message_id
                if mid is None or self.backend.message(scope, mid) is not None:
                    raise
                memory_id = self.backend.add_memory(
                    scope, replace(new, source_message_id=None), vec
                )
            if audit:
                self._event(
                    memory_id,
                    "add",
                    after={"content": content, "kind": kind},
                    detail={"source": source, **(detail or {})},
                    actor=actor,
                    scope=scope,
                )
        return memory_id

    def stored_text(self, content: str, kind: str = "fact") -> str:
        """The text :meth:`add_memory` would store (stripped, through the secret
        gate), so that callers can embed it before taking the write lock.
        Raises SecretRefusedError under ``secrets = "refuse"``."""
        content = content.strip()
        return content if kind == "message" else apply(content, self.secrets).text

    def remember(
        self,
        content: str,
        *,
        kind: str = "fact",
        importance: float = 0.5,
        tags: Sequence[str] = (),
        source: str = "user",
        confidence: float = 1.0,
        source_message_id: int | None = None,
        conversation: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Memory:
        """Explicit formation (``mem remember``): a memory, not a message."""
        if kind not in ("fact", "instruction"):
            raise UsageError(f"Unknown kind {kind!r} for remember: use fact or instruction.")
        meta = dict(metadata or {})
        if tags:
            meta["tags"] = sorted({t.strip() for t in tags if t.strip()})
        memory_id = self.add_memory(
            content,
            kind=kind,
            source=source,
            importance=importance,
            confidence=confidence,
            source_message_id=source_message_id,
            conversation=conversation,
            metadata=meta,
        )
        return self.get(memory_id)

    def update_memory(
        self,
        memory_id: int,
        content: str,
        *,
        actor: str = "user",
        detail: dict[str, Any] | None = None,
        importance: float | None = None,
        stored_vector: list[float] | None = None,
    ) -> Memory:
        """Replace a memory's text in place (consolidation's *update*);
        ``stored_vector`` as in :meth:`add_memory`."""
        old = self.get(memory_id)
        content = apply(content, self.secrets).text
        vec = stored_vector if stored_vector is not None else self.embedder.embed([content])[0]
        scope = self.writer(old.profile)
        with self.backend.transaction(scope):
            self._check_embedder(scope)
            patch = MemoryPatch(content=content, importance=importance)
            new = self.backend.update_memory(scope, memory_id, patch, vec)
            self._event(
                memory_id,
                "update",
                before={"content": old.content},
                after={"content": content},
                detail=detail,
                actor=actor,
                scope=scope,
            )
        return new

    def supersede(
        self,
        old_id: int,
        new_id: int,
        *,
        actor: str = "user",
        reason: str = "",
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Mark ``old_id`` replaced by ``new_id``: kept, but no longer current."""
        old = self.get(old_id)  # both in scope, or NotFoundError (``new_id``: the backend's)
        scope = self.writer(old.profile)
        with self.backend.transaction(scope):
            self.backend.update_memory(scope, old_id, MemoryPatch(superseded_by=new_id))
            self._event(
                old_id,
                "supersede",
                detail={"superseded_by": new_id, "reason": reason, **(detail or {})},
                actor=actor,
                scope=scope,
            )

    def touch(self, ids: Iterable[int]) -> None:
        """Record that memories were used in a prompt (use_count, last_used_at)."""
        self.backend.touch(self.scope, ids, timeutil.now_iso())

    # --------------------------------------------------------------- deleting
    def delete_row(self, memory_id: int, *, detail: dict[str, Any], actor: str = "user") -> None:
        """The one deletion of a memory: row, keyword entry, vectors; earlier
        audit events lose their text and a ``forget`` event records ``detail``.
        The caller holds the transaction and checks the profile. (SQLite only:
        for the verbs not yet moved onto ``backend.forget``.)"""
        cast(Any, self.backend).delete_row(memory_id, detail=detail, actor=actor)

    def delete_memories(self, ids: Iterable[int], *, reason: str, actor: str = "user") -> int:
        """Delete memories of the readable profiles for real (row, keyword entry,
        vectors) in one transaction, audited like ``forget``: earlier events
        lose their text and a ``forget`` event records ``reason``. Returns how
        many were deleted; ids that do not exist are passed over."""
        deleted = 0
        with self.backend.transaction(self.scope):
            for memory_id in ids:
                found = self.backend.memories(self.scope, [memory_id])
                if not found:
                    continue
                scope = self.writer(found[0].profile)
                gone = self.backend.delete_memories(scope, [memory_id], reason=reason, actor=actor)
                deleted += len(gone)
        return deleted
