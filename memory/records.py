"""Plain records the engine hands out: memories, search hits, audit events."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("fact", "instruction", "message", "episode", "document", "summary", "example")


@dataclass
class Memory:
    id: int
    profile: str
    kind: str
    content: str
    source: str
    importance: float
    confidence: float
    created_at: str
    updated_at: str
    source_message_id: int | None = None
    conversation: str | None = None
    external_id: str | None = None
    speaker: str | None = None
    last_used_at: str | None = None
    use_count: int = 0
    valid_from: str | None = None
    valid_until: str | None = None
    superseded_by: int | None = None
    expires_at: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.superseded_by is None and self.valid_until is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


MEMORY_COLUMNS = (
    "id, profile, kind, content, source, importance, confidence, created_at, updated_at, "
    "source_message_id, conversation_id, external_id, speaker, last_used_at, use_count, "
    "valid_from, valid_until, superseded_by, expires_at, metadata"
)


def memory_from_row(row: tuple[Any, ...]) -> Memory:
    """Build a Memory from a row selected with MEMORY_COLUMNS (in that order)."""
    values = list(row)
    meta = values[-1]
    # Most rows carry no metadata: skip the JSON parser for them (searches read
    # 50 candidates whole).
    values[-1] = json.loads(meta) if meta and meta != "{}" else {}
    return Memory(*values)


@dataclass
class Hit:
    """One search result with its provenance (where and when it came from)."""

    id: int
    kind: str
    content: str
    score: float
    created_at: str
    conversation: str | None
    message_id: int | None
    external_id: str | None
    profile: str
    source: str
    speaker: str | None = None
    importance: float = 0.5
    confidence: float = 1.0
    superseded_by: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["score"] = round(self.score, 6)
        return data


@dataclass
class Event:
    id: int
    memory_id: int | None
    event: str
    at: str
    actor: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Message:
    id: int
    conversation: str
    role: str
    content: str
    created_at: str
    speaker: str | None = None
    external_id: str | None = None
    profile: str = "default"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
