"""Consolidation: a new candidate fact against what is already known.

Each candidate becomes exactly one of
- **add**: nothing like it is stored;
- **update**: the same fact in richer words (the old text is replaced, kept in
  the audit trail);
- **supersede**: it contradicts a stored fact (same slot, another value, or a
  negation): the old memory gets ``superseded_by`` and a validity end, and is
  kept;
- **ignore**: a duplicate.
Every decision, ``ignore`` included, is written to ``memory_events`` with a
batch id, so ``undo_last`` can revert the last turn's changes as one unit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memory.errors import SecretRefusedError
from memory.formation.extraction import Candidate
from memory.lifecycle.forgetting import forget
from memory.records import Memory
from memory.retrieval.search import find
from memory.storage import MemoryFilter, MemoryPatch, NewEvent, Scope
from memory.text import content_words, stem

if TYPE_CHECKING:
    from memory.store import MemoryStore

DUPLICATE_JACCARD = 0.8
RICHER_JACCARD = 0.5
NEIGHBOURS = 5
MAX_BATCH = 10_000  # changes one undo reverts; a batch is one turn's candidates


@dataclass
class Change:
    action: str  # add | update | supersede | ignore
    memory_id: int
    text: str
    old_id: int | None = None
    old_text: str | None = None
    redacted: list[str] = field(default_factory=list)

    def receipt(self) -> str:
        note = f" (redacted: {', '.join(self.redacted)})" if self.redacted else ""
        if self.action == "add":
            return f"+ remembered: {self.text}{note}"
        if self.action == "update":
            return f"~ updated: {self.text}{note}"
        if self.action == "supersede":
            return f"~ updated: {self.text} (was: {self.old_text}){note}"
        return f"= already known: {self.text}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "id": self.memory_id,
            "text": self.text,
            "old_id": self.old_id,
            "old_text": self.old_text,
            "redacted": self.redacted,
        }


def _terms(text: str) -> set[str]:
    return {stem(w) for w in content_words(text)}


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


# Words that turn a statement around: "I like tea" and "I don't like tea"
# share every content word, so a merge also asks for the same ones of these.
NEGATIONS = frozenset(
    "not no never nor none nobody nothing neither without cannot can't don't doesn't "
    "didn't isn't aren't wasn't weren't won't wouldn't shouldn't hate hates dislike "
    "dislikes longer anymore stopped quit".split()
)


def same_fact(a: Memory, b: Memory) -> bool:
    """Whether two stored memories say one thing, for tending's merge: the
    duplicate rule of :func:`consolidate` (content words overlapping by
    ``DUPLICATE_JACCARD``) made stricter for rows nobody is looking at: the
    same kind, the same negations, and no two different values of one slot
    (those are a contradiction, not a duplicate)."""
    if a.kind != b.kind or a.id == b.id:
        return False
    sa, sb = a.metadata.get("slot"), b.metadata.get("slot")
    if sa and sb:
        va, vb = (str(m.metadata.get("value") or "").lower() for m in (a, b))
        if (
            sa != sb
            or va != vb
            or bool(a.metadata.get("negated")) != bool(b.metadata.get("negated"))
        ):
            return False
    if _negations(a.content) != _negations(b.content):
        return False
    return _jaccard(_terms(a.content), _terms(b.content)) >= DUPLICATE_JACCARD


class Duplicates:
    """:func:`same_fact` as tending's ``Judge`` (memory.lifecycle.tending),
    which sits below formation and is handed this decision."""

    threshold = DUPLICATE_JACCARD

    def terms(self, text: str) -> set[str]:
        return _terms(text)

    def same(self, a: Memory, b: Memory) -> bool:
        return same_fact(a, b)


DUPLICATES = Duplicates()


def _negations(text: str) -> set[str]:
    return {
        w for w in text.lower().replace("\u2019", "'").split() if w.strip(".,!?;:") in NEGATIONS
    }


def _same_slot(store: MemoryStore, cand: Candidate) -> list[Memory]:
    if not cand.slot:
        return []
    filters = MemoryFilter(
        kinds=(cand.kind,), where=(("slot", "=", cand.slot),), include_inactive=True
    )
    # Current means not superseded nor ended; an expired fact still holds its slot.
    found = store.backend.list_memories(Scope(store.profile), filters)
    return [m for m in found if m.superseded_by is None and m.valid_until is None]


def _neighbours(store: MemoryStore, cand: Candidate) -> list[int]:
    """Ids of the nearest current memories; searched (and the query embedded)
    before the write lock is taken."""
    hits = find(store, cand.text, kinds=(cand.kind,), limit=NEIGHBOURS)
    return [h.id for h in hits if h.profile == store.profile]


def _similar(store: MemoryStore, ids: list[int]) -> list[Memory]:
    """The neighbours found before the lock, re-read under it: one deleted or
    superseded meanwhile is passed over."""
    if not ids:
        return []
    found = store.backend.memories(Scope(store.profile), ids)
    return [m for m in found if m.superseded_by is None and m.valid_until is None]


def _stored_vector(store: MemoryStore, cand: Candidate) -> list[float] | None:
    """The candidate's vector as it would be stored, computed outside the write
    lock; None when the gate refuses it (the write then raises as before)."""
    try:
        text = store.stored_text(cand.text, cand.kind)
    except SecretRefusedError:
        return None
    return store.embedder.embed([text])[0]


def consolidate(
    store: MemoryStore,
    cand: Candidate,
    *,
    source_message_id: int | None = None,
    conversation: str | None = None,
    batch: str | None = None,
    actor: str = "extraction",
) -> Change:
    """Decide and apply add / update / supersede / ignore for one candidate."""
    batch = batch or new_batch()
    detail: dict[str, Any] = {"batch": batch}
    if source_message_id is not None:  # lineage: forgetting the message undoes this
        detail["source_message"] = source_message_id
    # Gated first, so the stored value, the slot comparison and an ``ignore``
    # event all see the redacted text (SecretRefusedError under "refuse").
    cand, redacted = cand.gated(store.secrets)
    new_terms = _terms(cand.text)
    meta: dict[str, Any] = {"slot": cand.slot, "value": cand.value, "negated": cand.negated}
    meta = {k: v for k, v in meta.items() if v}
    if redacted:
        meta["redacted"] = redacted
    # Embedding may be an HTTP call: do it (and the neighbour search) before the
    # write lock, and re-check what the decision depends on under the lock.
    vector = _stored_vector(store, cand)
    near = _neighbours(store, cand)

    def add() -> int:
        return store.add_memory(
            cand.text,
            kind=cand.kind,
            source=actor,
            importance=cand.importance,
            confidence=cand.confidence,
            source_message_id=source_message_id,
            conversation=conversation,
            metadata=meta,
            actor=actor,
            detail=detail,
            stored_vector=vector,
        )

    with store.backend.transaction(store.scope):
        for old in _same_slot(store, cand):
            same_value = (old.metadata.get("value") or "").lower() == (cand.value or "").lower()
            if same_value and bool(old.metadata.get("negated")) == cand.negated:
                return _ignore_or_update(store, old, cand, new_terms, detail, actor, vector)
            new_id = add()
            store.supersede(old.id, new_id, actor=actor, reason="contradiction", detail=detail)
            return _stored(store, "supersede", new_id, old)
        for old in _similar(store, near):
            old_terms = _terms(old.content)
            if _jaccard(new_terms, old_terms) >= DUPLICATE_JACCARD or new_terms <= old_terms:
                return _ignore_or_update(store, old, cand, new_terms, detail, actor, vector)
            if old_terms < new_terms and _jaccard(new_terms, old_terms) >= RICHER_JACCARD:
                return _ignore_or_update(store, old, cand, new_terms, detail, actor, vector)
        return _stored(store, "add", add(), None)


def _ignore_or_update(
    store: MemoryStore,
    old: Memory,
    cand: Candidate,
    new_terms: set[str],
    detail: dict[str, Any],
    actor: str,
    vector: list[float] | None = None,
) -> Change:
    old_terms = _terms(old.content)
    if old_terms < new_terms:
        store.update_memory(
            old.id,
            cand.text,
            actor=actor,
            detail=detail,
            importance=max(old.importance, cand.importance),
            stored_vector=vector,
        )
        return _stored(store, "update", old.id, old)
    event = NewEvent(old.id, "ignore", actor, after={"content": cand.text}, detail=detail)
    store.backend.add_event(store.scope, event)
    return Change("ignore", old.id, old.content)


def _stored(store: MemoryStore, action: str, memory_id: int, old: Memory | None) -> Change:
    """The change as stored (after the secret gate may have redacted it)."""
    mem = store.get(memory_id)
    return Change(
        action,
        memory_id,
        mem.content,
        None if old is None else old.id,
        None if old is None else old.content,
        list(mem.metadata.get("redacted", [])),
    )


def new_batch() -> str:
    return secrets.token_hex(6)


def undo_last(store: MemoryStore) -> list[str]:
    """Revert the newest batch of memory changes of this profile.

    Returns one line per reverted change; empty when there is nothing to undo.
    """
    last = store.last_change()
    if last is None:
        return []
    batch = last.detail.get("batch")
    if batch:
        found = store.backend.last_events(
            store.scope, events=("add", "update", "supersede"), limit=MAX_BATCH, batch=batch
        )
        event_ids = [e.id for e in found]
    else:
        event_ids = [last.id]
    # Texts restored by an update are embedded now, before the write lock.
    vectors: dict[int, list[float]] = {}
    for event_id in event_ids:
        event = store.event(event_id)
        if event is not None and event.event == "update" and event.before:
            text = store.stored_text(str(event.before.get("content") or ""))
            if text:
                vectors[event_id] = store.embedder.embed([text])[0]
    lines: list[str] = []
    with store.backend.transaction(store.scope):
        for event_id in event_ids:
            event = store.event(event_id)
            if event is None or event.memory_id is None:
                continue
            # Marked first: reverting an add forgets the memory the event names.
            store.backend.mark_event(store.scope, event_id, {"undone": 1})
            lines.append(
                _revert(store, event.memory_id, event.event, event.before, vectors.get(event_id))
            )
    return lines


def _revert(
    store: MemoryStore,
    memory_id: int,
    event: str,
    before: dict[str, Any] | None,
    vector: list[float] | None = None,
) -> str:
    mem = store.get(memory_id)
    if event == "add":
        forget(store, [memory_id])
        return f"- removed: {mem.content}"
    if event == "update" and before and "content" in before:
        store.update_memory(
            memory_id,
            str(before["content"]),
            actor="undo",
            detail={"undo": True},
            stored_vector=vector,
        )
        return f"~ restored: {before['content']}"
    if event == "update" and before and "importance" in before:
        # Tending's strengthening: the importance (and metadata) it replaced.
        backend, scope = store.backend, store.scope
        meta = before.get("metadata")
        patch = MemoryPatch(
            importance=float(before["importance"]),
            metadata=dict(meta) if isinstance(meta, dict) else None,
        )
        with backend.transaction(scope):
            backend.update_memory(scope, memory_id, patch)
            backend.add_event(scope, NewEvent(memory_id, "restore", "undo", detail={"undo": True}))
        return f"~ restored importance {float(before['importance']):.2f}: {mem.content}"
    if event == "supersede":
        backend, scope = store.backend, store.scope
        with backend.transaction(scope):
            backend.update_memory(scope, memory_id, MemoryPatch(clear_supersession=True))
            backend.add_event(scope, NewEvent(memory_id, "restore", "undo", detail={"undo": True}))
        return f"~ restored: {mem.content}"
    return f"? nothing to revert for #{memory_id}"
