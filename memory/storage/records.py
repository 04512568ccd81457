"""The records a storage backend takes and returns.

Plain dataclasses, no SQL: the same records cross the seam for every backend.
``Memory``, ``Message`` and ``Event`` are the engine's own records
(:mod:`memory.records`), re-exported so callers of the seam need one import.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from memory.errors import UsageError
from memory.records import KINDS, Event, Memory, Message

__all__ = [
    "KINDS",
    "Conversation",
    "Counts",
    "Document",
    "DocumentInfo",
    "Event",
    "ForgetResult",
    "KeywordStats",
    "Lineage",
    "Memory",
    "MemoryBrief",
    "MemoryFilter",
    "MemoryPatch",
    "Message",
    "NewEvent",
    "NEW_MEMORY_COLUMNS",
    "NEW_MESSAGE_COLUMNS",
    "NewMemory",
    "NewMessage",
]


@dataclass(frozen=True)
class NewMemory:
    """A memory to insert; the backend gives it its id and namespace."""

    content: str
    kind: str = "fact"
    source: str = "user"
    created_at: str = ""  # empty: now
    importance: float = 0.5
    confidence: float = 1.0
    source_message_id: int | None = None  # lineage: the message it came from
    conversation: str | None = None
    external_id: str | None = None
    speaker: str | None = None
    expires_at: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """What every backend refuses before writing: an unknown kind, no text."""
        if self.kind not in KINDS:
            raise UsageError(f"Unknown kind {self.kind!r}: use one of {', '.join(KINDS)}.")
        if not self.content.strip():
            raise UsageError("Nothing to remember: give some text.")

    def values(self, profile: str, now: str) -> tuple[Any, ...]:
        """The row's values in :data:`NEW_MEMORY_COLUMNS` order (the metadata, which
        each backend encodes its own way, follows them): one place that says
        which field goes to which column, for every backend's INSERT."""
        stamp = self.created_at or now
        return (profile, self.kind, self.content, self.source, self.source_message_id,
                self.conversation, self.external_id, self.speaker, self.importance,
                self.confidence, stamp, now, stamp, self.expires_at)  # fmt: skip


# The columns of :meth:`NewMemory.values` (created_at and valid_from are both
# the memory's time; updated_at is the time of writing).
NEW_MEMORY_COLUMNS = (
    "profile, kind, content, source, source_message_id, conversation_id, external_id, "
    "speaker, importance, confidence, created_at, updated_at, valid_from, expires_at"
)


@dataclass(frozen=True)
class MemoryPatch:
    """Fields to change on a memory; None leaves a field as it is.

    ``clear_supersession`` makes a superseded memory current again (undo,
    forgetting the memory that superseded it)."""

    content: str | None = None
    importance: float | None = None
    superseded_by: int | None = None
    valid_until: str | None = None
    expires_at: str | None = None
    metadata: dict[str, Any] | None = None
    clear_supersession: bool = False


@dataclass(frozen=True)
class NewMessage:
    conversation: str
    role: str
    content: str
    created_at: str = ""  # empty: now
    speaker: str | None = None
    external_id: str | None = None
    import_key: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def values(self, profile: str, now: str) -> tuple[Any, ...]:
        """The row's values in :data:`NEW_MESSAGE_COLUMNS` order (the metadata,
        which each backend encodes its own way, follows them), as
        :meth:`NewMemory.values` for a memory."""
        return (self.conversation, profile, self.role, self.speaker, self.content,
                self.created_at or now, self.external_id, self.import_key)  # fmt: skip


# The columns of :meth:`NewMessage.values`.
NEW_MESSAGE_COLUMNS = (
    "conversation_id, profile, role, speaker, content, created_at, external_id, import_key"
)


@dataclass(frozen=True)
class Conversation:
    id: str
    profile: str
    title: str | None
    created_at: str
    updated_at: str
    summary: str | None = None
    summary_upto: int | None = None
    messages: int = 0


@dataclass(frozen=True)
class DocumentInfo:
    """A file added with ``mem add``, as written (the namespace is the scope's)."""

    path: str
    format: str
    hash: str
    size: int
    mtime: float
    chunks: int
    chunker: str


@dataclass(frozen=True)
class Document:
    """A file row as read back."""

    path: str
    profile: str
    format: str
    hash: str
    size: int
    mtime: float
    chunks: int
    chunker: str
    added_at: str
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NewEvent:
    """An audit event; ``memory_id`` None for an event about no one memory
    (a removed document), which the backend files under the scope's namespace."""

    memory_id: int | None
    event: str
    actor: str = "user"
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MemoryFilter:
    """Which memories a read considers, on top of the scope.

    ``where`` holds metadata filters (key, op, value): op ``=`` equals, ``~=``
    contains, ``!=`` differs (a missing key differs). Inactive memories
    (superseded, ended, expired at ``now``) are left out unless
    ``include_inactive``."""

    kinds: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    conversation: str | None = None
    include_inactive: bool = False
    where: tuple[tuple[str, str, str], ...] = ()
    exclude_kinds: tuple[str, ...] = ()
    exclude_ids: tuple[int, ...] = ()
    exclude_messages: tuple[int, ...] = ()  # message memories of these messages
    now: str | None = None  # None: the current time

    @property
    def narrow(self) -> bool:
        """A filter that leaves few rows: exact scans are cheap under it."""
        return bool(self.conversation or self.since or self.until or self.where)


# What ranking reads of a search candidate, not its text: (id, kind,
# conversation, created_at, speaker, importance). A plain tuple, since a search
# reads hundreds of them.
MemoryBrief = tuple[int, str, str | None, str, str | None, float]


@dataclass(frozen=True)
class KeywordStats:
    """Rows and tokens of the keyword index within one scope."""

    rows: int
    tokens: int


@dataclass(frozen=True)
class Counts:
    """What ``mem stats`` counts in one scope."""

    kinds: dict[str, tuple[int, int]]  # kind -> (active, inactive)
    messages: int
    conversations: int


@dataclass(frozen=True)
class Lineage:
    """What derives from a set of messages, within one namespace."""

    messages: tuple[int, ...]
    memories: tuple[int, ...]  # rows to delete: message rows, facts, summaries, episodes
    conversations: tuple[str, ...]  # whose running summary may fold the messages in
    quoting_events: tuple[int, ...]  # audit events that quote a message (blanked)


@dataclass
class ForgetResult:
    """What a forget touched. ``texts`` are the deleted texts, for the caller
    to scrub from copies outside the backend (the REPL history)."""

    memories: list[int] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    derived: list[int] = field(default_factory=list)
    restored: list[int] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    events: int = 0
    texts: list[str] = field(default_factory=list)
    scrub_pending: bool = False
    # When pending: one line saying what keeps the text and what finishes the
    # scrub (empty: the backend's own retry at next open).
    scrub_hint: str = ""
