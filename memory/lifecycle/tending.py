"""Tending ("sleep"): the upkeep a memory gets between conversations.

``mem tend`` (a dry run unless ``--yes``) and, at most once a day, the start of
a chat (memory.assistant.sleep) plan and apply:

* **merge**: two current facts (or instructions) that say one thing become one.
  The richer one is kept (then the more used, then the older), with the higher
  importance of the two; the other is superseded by it (kept, marked, reason
  ``merge``), so its lineage stays: forgetting the kept one makes it current
  again, and undo restores both. Whether two say one thing is formation's
  decision (``Judge``, memory.formation.consolidation.DUPLICATES); fact keys of
  imported conversations are left alone (each leads to its own message).
* **strengthen**: importance follows use. A memory counted in at least
  ``MIN_USES`` prompts gets ``base + USE_STEP * log2(1 + uses)``, at most
  ``IMPORTANCE_CAP``, never lowered; ``base`` is its importance before tending
  first raised it (kept in ``metadata.base_importance``), so a second run
  changes nothing until the memory is used again.
* **stale**: two current facts of one slot with different values are a
  contradiction that consolidation missed (written by another path, or by two
  processes at once): the older is superseded by the newer (reason ``stale``).
* **summary**: a conversation with the assistant whose running summary was
  dropped (a forget took a turn it folded in), with turns past the fold's
  trigger, is folded again, offline (``Tenders.refold``).
* **episode**: the hook ``Tenders.episodes`` (``EpisodeHook``) lets the
  episodes module list and rebuild episodes whose turns changed (none without it).
* **fade** is no change: an unused memory of low importance falls in ranking
  by itself (memory.retrieval.ranking: no use lift, recency from its age);
  the report lists the facts and instructions this is true of. Tending never
  deletes: retention (``mem prune``) does.

Every change is an audit event of one batch, so ``/undo`` or ``mem undo``
reverts a run as one unit; a refolded summary stays (it is derived from the
turns, and the next turn would fold it again). Uses are counted by the turn
(``MemoryStore.touch`` after the reply), not by ``mem search``.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from memory import timeutil
from memory.config import Config
from memory.errors import MemError
from memory.lifecycle.tending_plan import (
    Action,
    EpisodeHook,
    Judge,
    Tenders,
    plan,
    strengthened,
)
from memory.records import Memory
from memory.storage import MemoryPatch, NewEvent

if TYPE_CHECKING:
    from memory.store import MemoryStore

__all__ = [
    "Action",
    "EpisodeHook",
    "Judge",
    "TendReport",
    "Tenders",
    "due",
    "last_run",
    "plan",
    "tend",
]

ACTOR = "tend"
LAST_RUN = "tend_last_run"  # meta key (per profile): when tending last ran
INTERVAL = timedelta(days=1)  # a chat tends at most this often


@dataclass
class TendReport:
    applied: bool
    actions: list[Action] = field(default_factory=list)
    batch: str | None = None

    @property
    def changes(self) -> list[Action]:
        return [a for a in self.actions if a.changes]

    def counts(self) -> dict[str, int]:
        return dict(Counter(a.action for a in self.actions))

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "batch": self.batch,
            "counts": self.counts(),
            "actions": [a.to_dict() for a in self.actions],
        }


# ------------------------------------------------------------------ applying
def tend(
    store: MemoryStore,
    tenders: Tenders,
    config: Config | None = None,
    *,
    apply: bool = False,
) -> TendReport:
    """Plan a run; with ``apply``, carry it out as one undoable batch and
    record when it ran (the profile's ``tend_last_run`` in meta)."""
    actions = plan(store, tenders, config)
    if not apply:
        return TendReport(False, actions)
    batch = secrets.token_hex(6)  # as consolidation's batches: one /undo reverts it
    done: list[Action] = []
    backend, scope = store.backend, store.scope
    with backend.transaction(scope):
        for action in actions:
            if action.action in ("merge", "stale"):
                if _supersede(store, action, batch):
                    done.append(action)
            elif action.action == "strengthen":
                if _set_importance(store, action, batch):
                    done.append(action)
            elif not action.changes:
                done.append(action)
    for action in actions:
        if action.action == "summary" and tenders.refold is not None:
            assert action.conversation is not None
            if tenders.refold(action.conversation):
                detail = {"profile": store.profile, "conversation": action.conversation}
                event = NewEvent(None, "tend", ACTOR, detail={**detail, "batch": batch})
                backend.add_event(scope, event)
                done.append(action)
        elif action.action == "episode" and tenders.episodes is not None:
            if tenders.episodes.rebuild(store, action, batch):
                done.append(action)
    mark_run(store)
    return TendReport(True, done, batch)


def _supersede(store: MemoryStore, action: Action, batch: str) -> bool:
    """Merge or retire one memory (re-read under the lock: one changed since
    the plan is passed over)."""
    assert action.memory_id is not None and action.other_id is not None
    found = {
        m.id: m for m in store.backend.memories(store.scope, [action.memory_id, action.other_id])
    }
    old, kept = found.get(action.memory_id), found.get(action.other_id)
    if old is None or kept is None or not (old.active and kept.active):
        return False
    reason = "merge" if action.action == "merge" else "stale"
    store.supersede(old.id, kept.id, actor=ACTOR, reason=reason, detail={"batch": batch})
    if action.action == "merge" and old.importance > kept.importance:
        _importance(store, kept, old.importance, batch, {"merged": old.id}, base=False)
    return True


def _set_importance(store: MemoryStore, action: Action, batch: str) -> bool:
    assert action.memory_id is not None and action.importance is not None
    found = store.backend.memories(store.scope, [action.memory_id])
    new = strengthened(found[0]) if found and found[0].active else None
    if new is None:
        return False
    action.importance = new
    _importance(store, found[0], new, batch, {"uses": found[0].use_count})
    return True


def _importance(
    store: MemoryStore,
    m: Memory,
    value: float,
    batch: str,
    why: dict[str, Any],
    *,
    base: bool = True,
) -> None:
    """Raise one memory's importance, audited as an ``update`` whose ``before``
    holds what undo restores (importance and metadata); ``base``: keep the
    importance it had before use raised it (see :func:`strengthened`)."""
    meta = dict(m.metadata)
    if base:
        meta.setdefault("base_importance", m.importance)
    store.backend.update_memory(store.scope, m.id, MemoryPatch(importance=value, metadata=meta))
    event = NewEvent(
        m.id,
        "update",
        ACTOR,
        before={"importance": m.importance, "metadata": m.metadata},
        after={"importance": value},
        detail={"batch": batch, **why},
    )
    store.backend.add_event(store.scope, event)


# -------------------------------------------------------------- when to run
def _key(store: MemoryStore) -> str:
    return f"{LAST_RUN}:{store.profile}"


def last_run(store: MemoryStore) -> str | None:
    return store.backend.get_meta(store.scope, _key(store))


def due(store: MemoryStore) -> bool:
    """Whether a chat should tend now: never ran, or ran ``INTERVAL`` ago."""
    last = last_run(store)
    if not last:
        return True
    try:
        return timeutil.now() - timeutil.from_iso(last) >= INTERVAL
    except ValueError:
        return True


def mark_run(store: MemoryStore) -> None:
    """Record the run in meta; a PostgreSQL member may not write meta (then a
    chat tends again next time, which finds little to do)."""
    try:
        store.backend.set_meta(store.scope, _key(store), timeutil.now_iso())
    except MemError:
        pass
