"""The storage seam, part two: the calls of the lifecycle verbs.

What forgetting, retention, fact-key extraction, ``mem add`` and
``mem export`` / ``mem import`` ask of a database beyond the core calls of
:class:`memory.storage.protocol.StorageBackend`, which includes this protocol.
The same rules hold: a :class:`Scope` on every call, the scope's own namespace
for every write and for the bulk reads here. SQLite:
:mod:`memory.storage.sqlite.lifecycle` and :mod:`memory.storage.sqlite.transfer`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

from memory.storage.records import Conversation, Document, Memory, MemoryFilter, Message, NewMessage
from memory.storage.scope import Scope
from memory.storage.transfer import MemoryTimes, StoredMessage


@runtime_checkable
class LifecycleCalls(Protocol):
    """Bulk reads and writes of the lifecycle verbs."""

    # ------------------------------------------- retention, formation, files
    def memory_ids(
        self, scope: Scope, *, kind: str | None = None, before: str | None = None
    ) -> list[int]:
        """Ids of the scope's own memories, oldest first: only of ``kind``,
        only created before ``before`` (an ISO time), when given."""
        ...

    def expired_ids(self, scope: Scope, at: str) -> list[int]:
        """Ids of the scope's own memories whose ``expires_at`` is at or before
        ``at``, oldest first; a message's index row never expires on its own
        (it goes with its message)."""
        ...

    def message_ids(self, scope: Scope, *, before: str | None = None) -> list[int]:
        """Ids of the scope's own messages, oldest first (created before ``before``)."""
        ...

    def expire(self, scope: Scope, memory_ids: Sequence[int], message_ids: Sequence[int]) -> None:
        """Retention, in one transaction: delete these own memories (nothing
        restored, no lineage followed) and these own messages with their index
        rows. Derived facts, summaries and episodes have retention limits of
        their own, so a message past its limit does not take them along."""
        ...

    def used_ids(self, scope: Scope, *, min_uses: int = 1) -> list[int]:
        """Ids of the scope's own current memories (not superseded nor ended)
        counted in prompts at least ``min_uses`` times (``touch``), most used
        first, then oldest: what tending strengthens."""
        ...

    def untagged_messages(self, scope: Scope, conversation_id: str, key: str) -> list[Message]:
        """The conversation's own messages whose metadata lacks ``key``, in order."""
        ...

    def tag_messages(self, scope: Scope, ids: Iterable[int], key: str) -> None:
        """Set ``key`` to 1 in the metadata of each of the scope's own ``ids``."""
        ...

    def document_chunks(self, scope: Scope, path: str) -> list[int]:
        """Ids of the chunks of the scope's own file ``path``, oldest first."""
        ...

    def touch_document(
        self, scope: Scope, path: str, *, size: int, mtime: float | None = None
    ) -> None:
        """Record a file's new size (and mtime) without rechunking it; size -1
        marks a file being rewritten, so an interrupted add redoes it."""
        ...

    def checkpoint(self, scope: Scope) -> None:
        """Fold a write-ahead log into the database file (no-op without one)."""
        ...

    # ------------------------------------------------- transfer (lifecycle)
    def iter_conversations(self, scope: Scope) -> Iterator[Conversation]:
        """The scope's own conversations in the order they were made
        (``messages`` not counted: 0)."""
        ...

    def iter_messages(self, scope: Scope) -> Iterator[StoredMessage]:
        """The scope's own messages, oldest id first."""
        ...

    def iter_memories(self, scope: Scope, filters: MemoryFilter) -> Iterator[Memory]:
        """The scope's own memories passing ``filters``, oldest id first."""
        ...

    def iter_documents(self, scope: Scope) -> Iterator[Document]:
        """The scope's own file rows in the order they were added."""
        ...

    def import_key(self, scope: Scope, message_id: int) -> str | None:
        """The import key of one of the scope's own messages (None: no such message)."""
        ...

    def import_keys(self, scope: Scope) -> set[str]:
        """Every import key of the scope's own messages."""
        ...

    def message_by_key(self, scope: Scope, key: str) -> StoredMessage | None: ...

    def find_memories(
        self, scope: Scope, *, kind: str, content: str, created_at: str | None = None
    ) -> list[int]:
        """Ids of the scope's own memories with exactly this kind and text (and
        creation time, when given), oldest first: an import's duplicates."""
        ...

    def restore_times(self, scope: Scope, memory_id: int, times: MemoryTimes) -> None:
        """Set a just-imported memory's stored times and use count as exported."""
        ...

    def link_superseded(self, scope: Scope, memory_id: int, by: int) -> None:
        """Record that ``by`` superseded ``memory_id``, unless it names a
        superseding memory already (an import's ``superseded_by``)."""
        ...

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
        """An import's conversation fields, where the stored conversation has
        none yet: a title, a later ``updated_at``, a summary (True when set);
        ``summary_upto`` is set as given."""
        ...

    def import_document(self, scope: Scope, document: Document) -> bool:
        """Insert a file row with its times, unless the scope has that path."""
        ...

    def replace_message(
        self, scope: Scope, message_id: int, message: NewMessage, *, reason: str, actor: str
    ) -> str | None:
        """Give one of the scope's own messages new text, role, speaker and
        metadata (and time, when given); its index row is deleted, audited
        with ``reason``, for the caller to index the new text. Returns the
        message's time (None: no such message)."""
        ...


@runtime_checkable
class NarrowScrub(Protocol):
    """A :data:`Scrub` that names ``needles``: lower-case ASCII strings every
    text it matches contains, which a backend may use to narrow its scan
    (forget --query over a large audit trail)."""

    needles: tuple[str, ...]

    def __call__(self, text: str) -> bool: ...
