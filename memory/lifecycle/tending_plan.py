"""Tending's plan: what a run would change, and why (reads only). The rules
are described in :mod:`memory.lifecycle.tending`, which applies them."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from memory import timeutil
from memory.config import Config
from memory.models.tokens import at_most
from memory.records import Memory
from memory.storage import MemoryFilter, Scope

if TYPE_CHECKING:
    from memory.store import MemoryStore

MIN_USES = 2
USE_STEP = 0.05
IMPORTANCE_CAP = 0.9
FADE_IMPORTANCE = 0.5  # below this, an unused old memory is listed as fading
FADE_HALF_LIVES = 3  # ... when older (and idle) than this many half-lives
RECENT_CONVERSATIONS = 50  # conversations whose summary tending checks
MERGED_KINDS = ("fact", "instruction")
FACT_KEY_SOURCE = "fact-key"


class Judge(Protocol):
    """Formation's decision of what is a duplicate (tending sits below it)."""

    threshold: float  # the least Jaccard overlap of two duplicates' terms

    def terms(self, text: str) -> set[str]: ...

    def same(self, a: Memory, b: Memory) -> bool: ...


class EpisodeHook(Protocol):
    """How episodes (memory.formation.episodes) plug into tending: ``stale``
    lists, reading only, the episodes whose turns changed since they were
    written (``Action("episode", memory_id, title, reason, conversation=…)``);
    ``rebuild`` rewrites one, True when it did, its events carrying ``batch``
    in their detail (an ``add``/``update``/``supersede`` with it is reverted
    by the run's undo)."""

    def stale(self, store: MemoryStore) -> list[Action]: ...

    def rebuild(self, store: MemoryStore, action: Action, batch: str) -> bool: ...


@dataclass
class Tenders:
    """What tending asks of the layers above it: the duplicate judge, the
    summary fold (True when it folded) and the episodes hook."""

    judge: Judge
    refold: Callable[[str], bool] | None = None
    episodes: EpisodeHook | None = None


@dataclass
class Action:
    action: str  # merge | strengthen | stale | summary | episode | fade
    memory_id: int | None
    text: str
    reason: str
    other_id: int | None = None  # merge: the one kept; stale: the newer fact
    other_text: str | None = None
    importance: float | None = None  # strengthen, merge: the kept one's new importance
    conversation: str | None = None

    @property
    def changes(self) -> bool:
        return self.action != "fade"

    def line(self) -> str:
        ref = f"#{self.memory_id} " if self.memory_id is not None else ""
        if self.action == "merge":
            return f"merge {ref}into #{self.other_id}: {self.text}  ({self.reason})"
        if self.action == "stale":
            return f"stale {ref}{self.text}: superseded by #{self.other_id}  ({self.reason})"
        if self.action == "summary":
            return f"summary of {self.conversation}: fold again  ({self.reason})"
        if self.action == "strengthen":
            return f"strengthen {ref}to {self.importance:.2f}: {self.text}  ({self.reason})"
        return f"{self.action} {ref}{self.text}  ({self.reason})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "id": self.memory_id,
            "text": self.text,
            "reason": self.reason,
            "other_id": self.other_id,
            "other_text": self.other_text,
            "importance": self.importance,
            "conversation": self.conversation,
        }


# ------------------------------------------------------------------ planning
def plan(store: MemoryStore, tenders: Tenders, config: Config | None = None) -> list[Action]:
    """What a run would do, and why; reads only."""
    config = config or Config()
    own = Scope(store.profile)
    current = {
        kind: [
            m
            for m in store.backend.list_memories(own, MemoryFilter(kinds=(kind,)))
            if m.source != FACT_KEY_SOURCE
        ]
        for kind in MERGED_KINDS
    }
    actions = _stale(current["fact"])
    gone = {a.memory_id for a in actions}
    for kind in MERGED_KINDS:
        actions += _merges([m for m in current[kind] if m.id not in gone], tenders.judge)
    gone |= {a.memory_id for a in actions}
    actions += _strengthen(store, own, gone)
    actions += _summaries(store, config)
    if tenders.episodes is not None:
        actions += tenders.episodes.stale(store)
    actions += _fading(current, gone, config)
    return actions


def _keeper_order(m: Memory, terms: set[str]) -> tuple[int, int, int]:
    return (-len(terms), -m.use_count, m.id)


def _merges(mems: Sequence[Memory], judge: Judge) -> list[Action]:
    """Near-duplicate pairs, found without comparing every pair: two sets with
    Jaccard >= t share a word among the rarest ``n - ceil(t n) + 1`` of each
    (prefix filtering), so only those words are indexed, and the judge is
    asked only about pairs whose word sets overlap that much."""
    terms = {m.id: judge.terms(m.content) for m in mems}
    freq = Counter(t for ts in terms.values() for t in ts)
    ordered = sorted(mems, key=lambda m: _keeper_order(m, terms[m.id]))
    index: dict[str, list[Memory]] = defaultdict(list)
    absorbed: dict[int, Memory] = {}
    actions: list[Action] = []
    for m in ordered:  # keepers come first: richer, more used, older
        ts = sorted(terms[m.id], key=lambda t: (freq[t], t))
        prefix = ts[: len(ts) - math.ceil(judge.threshold * len(ts)) + 1] if ts else []
        seen: set[int] = set()
        keeper = None
        mine = terms[m.id]
        for t in prefix:
            for k in index[t]:
                if k.id in seen:
                    continue
                seen.add(k.id)
                theirs = terms[k.id]
                # The overlap from the sets at hand first: the judge re-reads the texts.
                if len(mine & theirs) >= judge.threshold * len(mine | theirs) and judge.same(k, m):
                    keeper = k
                    break
            if keeper is not None:
                break
        if keeper is None:
            for t in prefix:
                index[t].append(m)
            continue
        absorbed[m.id] = keeper
        richer = len(terms[m.id]) < len(terms[keeper.id])
        reason = "the same, in fewer words" if richer else "a duplicate"
        actions.append(
            Action(
                "merge",
                m.id,
                m.content,
                reason,
                other_id=keeper.id,
                other_text=keeper.content,
                importance=max(m.importance, keeper.importance),
            )
        )
    return actions


def _stale(facts: Sequence[Memory]) -> list[Action]:
    slots: dict[str, list[Memory]] = defaultdict(list)
    for m in facts:
        if m.metadata.get("slot"):
            slots[str(m.metadata["slot"])].append(m)
    actions: list[Action] = []
    for slot, group in slots.items():
        values = {(str(m.metadata.get("value") or "").lower(), bool(m.metadata.get("negated")))
                  for m in group}  # fmt: skip
        if len(values) < 2:
            continue
        newest = max(group, key=lambda m: (m.created_at, m.id))
        for m in group:
            mine = (str(m.metadata.get("value") or "").lower(), bool(m.metadata.get("negated")))
            theirs = (str(newest.metadata.get("value") or "").lower(),
                      bool(newest.metadata.get("negated")))  # fmt: skip
            if m.id != newest.id and mine != theirs:
                reason = f"slot {slot}: a newer fact says otherwise"
                actions.append(Action("stale", m.id, m.content, reason, newest.id, newest.content))
    return actions


def strengthened(m: Memory) -> float | None:
    """The importance ``m``'s use earns, or None when that is no change."""
    if m.use_count < MIN_USES:
        return None
    base = m.metadata.get("base_importance", m.importance)
    base = float(base) if isinstance(base, int | float) else m.importance
    target = min(IMPORTANCE_CAP, base + USE_STEP * math.log2(1 + m.use_count))
    target = round(target, 3)
    return target if target > m.importance + 1e-9 else None


def _strengthen(store: MemoryStore, own: Scope, skip: set[int | None]) -> list[Action]:
    ids = [i for i in store.backend.used_ids(own, min_uses=MIN_USES) if i not in skip]
    actions: list[Action] = []
    for start in range(0, len(ids), 500):
        for m in store.backend.memories(own, ids[start : start + 500]):
            new = strengthened(m)
            if new is not None:
                why = f"used in {m.use_count} prompts, last {m.last_used_at or '?'}"
                actions.append(Action("strengthen", m.id, m.content, why, importance=new))
    actions.sort(key=lambda a: -(a.importance or 0.0))
    return actions


def _summaries(store: MemoryStore, config: Config) -> list[Action]:
    """Conversations with the assistant whose running summary was dropped (a
    forget), whose unsummarised turns pass the fold's trigger. A conversation
    whose last reply was imported (it has the file's id) is a log, not a chat
    mem kept a summary of."""
    if config.memory not in ("summary", "summary-buffer"):
        return []
    actions: list[Action] = []
    for conv in store.backend.conversations(store.scope, limit=RECENT_CONVERSATIONS):
        if conv.summary is not None or conv.profile != store.profile:
            continue
        turns = store.messages(conv.id)
        replies = [m for m in turns if m.role == "assistant"]
        if not replies or replies[-1].external_id is not None:
            continue  # no chat with mem's assistant (an imported log): no summary was kept
        if config.memory == "summary-buffer":
            kept = config.window * 2
            if len(turns) <= kept or sum(at_most(m.content) for m in turns) <= (
                config.summary_trigger_tokens
            ):
                continue
        why = f"{len(turns)} turns and no running summary (a forget dropped it)"
        actions.append(Action("summary", None, conv.title or conv.id, why, conversation=conv.id))
    return actions


def _fading(
    current: dict[str, list[Memory]], changed: set[int | None], config: Config
) -> list[Action]:
    now = timeutil.now()
    half_life = max(config.recency_half_life_days, 1e-6)
    actions: list[Action] = []
    for mems in current.values():
        for m in mems:
            if m.id in changed or m.importance >= FADE_IMPORTANCE:
                continue
            last = timeutil.from_iso(m.last_used_at or m.created_at)
            idle = (now - last).total_seconds() / 86400
            if idle >= FADE_HALF_LIVES * half_life:
                why = f"importance {m.importance:.2f}, unused for {int(idle)} days: ranks lower"
                actions.append(Action("fade", m.id, m.content, why))
    return actions
