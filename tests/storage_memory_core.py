"""The state and primitives of the in-memory backend (tests/storage_memory.py)."""

from __future__ import annotations

import contextlib
import copy
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from memory import timeutil
from memory.errors import NotFoundError, UsageError
from memory.storage import Document, MemoryFilter, Scope
from memory.storage.records import Event, Memory, Message
from memory.text import stem, words

K1, B, IDF_FLOOR = 1.2, 0.75, 1e-6


def tokens(text: str | None) -> list[str]:
    return [stem(w) for w in words(text or "")]


@dataclass
class _State:
    meta: dict[str, str] = field(default_factory=dict)
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: dict[int, Message] = field(default_factory=dict)
    memories: dict[int, Memory] = field(default_factory=dict)
    vectors: dict[int, list[float]] = field(default_factory=dict)
    documents: dict[tuple[str, str], Document] = field(default_factory=dict)
    events: dict[int, Event] = field(default_factory=dict)
    message_meta: dict[int, dict[str, Any]] = field(default_factory=dict)
    message_keys: dict[int, str | None] = field(default_factory=dict)
    import_keys: dict[str, int] = field(default_factory=dict)  # import key -> message id
    last: dict[str, int] = field(default_factory=lambda: {"memory": 0, "message": 0, "event": 0})


class Core:
    name = "memory"
    encrypted = False

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.s = _State()
        self._saved: list[_State] = []

    def _next(self, what: str) -> int:
        self.s.last[what] += 1
        return self.s.last[what]

    @contextlib.contextmanager
    def transaction(self, scope: Scope) -> Iterator[None]:
        self._saved.append(copy.deepcopy(self.s))
        try:
            yield
        except BaseException:
            self.s = self._saved.pop()
            raise
        else:
            self._saved.pop()

    def _vector(self, vector: Sequence[float]) -> list[float]:
        if len(vector) != self.dim:
            raise UsageError(f"A vector of {len(vector)} numbers for an index of {self.dim}.")
        return [float(x) for x in vector]

    def _readable(self, scope: Scope, mid: int) -> Memory | None:
        m = self.s.memories.get(mid)
        return m if m is not None and scope.reads(m.profile) else None

    def _own(self, scope: Scope, mid: int) -> Memory:
        m = self.s.memories.get(mid)
        if m is None or m.profile != scope.writes:
            raise NotFoundError(f"No memory with id {mid}: see `mem list` for ids.")
        return m

    def message(self, scope: Scope, message_id: int) -> Message | None:
        m = self.s.messages.get(message_id)
        return m if m is not None and m.profile == scope.writes else None

    def memory(self, scope: Scope, memory_id: int) -> Memory:
        m = self._readable(scope, memory_id)
        if m is None:
            raise NotFoundError(f"No memory with id {memory_id}: see `mem list` for ids.")
        return copy.deepcopy(m)

    def _passing(self, scope: Scope, f: MemoryFilter) -> list[Memory]:
        now = f.now or timeutil.now_iso()
        return [
            m
            for _, m in sorted(self.s.memories.items())
            if scope.reads(m.profile) and _passes(m, f, now)
        ]

    def _delete(self, mid: int, detail: dict[str, Any], actor: str = "user") -> str:
        m = self.s.memories.pop(mid)
        self.s.vectors.pop(mid, None)
        for eid, e in self.s.events.items():
            if e.memory_id == mid:
                self.s.events[eid] = replace(e, before=None, after=None)
        self._event(mid, "forget", actor, None, None, {**detail, "profile": m.profile})
        return m.content

    def _event(
        self,
        mid: int | None,
        event: str,
        actor: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        detail: dict[str, Any],
    ) -> int:
        eid = self._next("event")
        self.s.events[eid] = Event(
            eid,
            mid,
            event,
            timeutil.now_iso(),
            actor,
            before,
            after,
            json.loads(json.dumps(detail)),
        )
        return eid

    def _owner(self, e: Event) -> str | None:
        m = self.s.memories.get(e.memory_id or 0)
        return m.profile if m is not None else e.detail.get("profile")


def _count(column: list[str], phrase: list[str]) -> int:
    n = len(phrase)
    return sum(1 for i in range(len(column) - n + 1) if column[i : i + n] == phrase)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float | None:
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
    if not na or not nb:
        return None
    return sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb)


def _meta_text(value: Any) -> str | None:
    """A metadata value as SQLite's ``CAST(json_extract(…) AS TEXT)`` gives it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _passes(m: Memory, f: MemoryFilter, now: str) -> bool:
    if f.kinds and m.kind not in f.kinds:
        return False
    if (f.since and m.created_at < f.since) or (f.until and m.created_at > f.until):
        return False
    if f.conversation and m.conversation != f.conversation:
        return False
    if not f.include_inactive and (
        m.superseded_by is not None
        or m.valid_until is not None
        or (m.expires_at is not None and m.expires_at <= now)
    ):
        return False
    for key, op, value in f.where:
        field_ = _meta_text(m.metadata.get(key))
        if op == "=" and field_ != value:
            return False
        if op == "~=" and (field_ is None or value not in field_):
            return False
        if op == "!=" and field_ == value:
            return False
    if m.kind in f.exclude_kinds or m.id in f.exclude_ids:
        return False
    return not (m.kind == "message" and m.source_message_id in f.exclude_messages)
