"""The storage seam: what the engine asks of a database, and nothing more.

One protocol, two real backends (SQLite embedded, PostgreSQL on a server; see
docs/storage.md) and a test double. The rules every implementation keeps:

- **Scope inside.** Every call takes a :class:`Scope` and applies it inside
  its own queries: ids, references (a source message, a conversation, a
  superseding memory), keyword statistics, candidate caps, counts and error
  messages see only the scope's namespaces. Another namespace's row is
  answered exactly like a missing one. Writes go to ``scope.writes`` only; a
  shared namespace is read, never written, through another profile's scope.
- **Ids are never reused.** A deleted memory's or message's id is never given
  out again, so ``forget N`` never hits a newer row and an audit trail never
  mixes two memories.
- **Lineage.** :meth:`StorageBackend.forget` follows what derives from what
  (a message's index row, facts whose source it is, summaries and episodes of
  its conversation, updates that quote it) and deletes it all in one
  transaction; :meth:`StorageBackend.scrub` then removes forgotten text from
  whatever the database keeps on the side (WAL, index segments, dead tuples).
- **Transactions nest.** ``with backend.transaction(scope):`` commits at the
  outermost exit; an exception rolls back to where that block began.
- **Vectors are given, not made.** Callers embed outside any transaction and
  pass vectors in: no embedding request holds a write lock.
- **Policy stays above.** The secret gate, validation of user input and the
  audit of adds and updates (``add_event`` in the same transaction) are the
  caller's; a backend stores what it is given. Deletions audit themselves
  (a ``forget`` event, earlier events blanked), since every backend must.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Literal, Protocol, runtime_checkable

from memory.storage.protocol_lifecycle import LifecycleCalls
from memory.storage.records import (
    Conversation,
    Counts,
    Document,
    DocumentInfo,
    Event,
    ForgetResult,
    KeywordStats,
    Lineage,
    Memory,
    MemoryBrief,
    MemoryFilter,
    MemoryPatch,
    Message,
    NewEvent,
    NewMemory,
    NewMessage,
)
from memory.storage.scope import Scope

Column = Literal["content", "speaker"]
Scrub = Callable[[str], bool]  # True: this text holds words being forgotten


@runtime_checkable
class StorageBackend(LifecycleCalls, Protocol):
    """A database of memories, messages, conversations, documents and events."""

    name: str  # "sqlite", "postgres", "memory"

    # ------------------------------------------------------------ lifecycle
    def close(self) -> None: ...

    def transaction(self, scope: Scope) -> AbstractContextManager[None]:
        """All or nothing; nested blocks are savepoints."""
        ...

    def get_meta(self, scope: Scope, key: str) -> str | None:
        """A setting of the database itself (embedder name, dimension)."""
        ...

    def set_meta(self, scope: Scope, key: str, value: str) -> None: ...

    # -------------------------------------------------------- conversations
    def add_conversation(
        self,
        scope: Scope,
        conversation_id: str,
        *,
        title: str | None = None,
        created_at: str = "",
    ) -> bool:
        """Create a conversation (False: this scope has it already). An id
        another namespace holds raises UsageError without naming it."""
        ...

    def conversation(self, scope: Scope, conversation_id: str) -> Conversation | None: ...

    def has_conversation(self, scope: Scope, conversation_id: str) -> bool:
        """Whether the scope owns this conversation (no message count: search
        checks this on every query filtered by conversation)."""
        ...

    def conversations(self, scope: Scope, *, limit: int = 50) -> list[Conversation]:
        """The scope's own conversations, most recently updated first."""
        ...

    def set_summary(
        self, scope: Scope, conversation_id: str, summary: str | None, upto: int | None
    ) -> bool: ...

    def set_title(self, scope: Scope, conversation_id: str, title: str | None) -> bool: ...

    # ------------------------------------------------------------- messages
    def add_message(self, scope: Scope, message: NewMessage) -> int:
        """Append to one of the scope's conversations (NotFoundError otherwise)."""
        ...

    def add_messages(
        self,
        scope: Scope,
        batch: Sequence[tuple[NewMessage, NewMemory | None, Sequence[float]]],
    ) -> list[int]:
        """``add_message`` for each message in order, each with its memory
        (``add_memory`` with ``source_message_id`` set to the new message; None:
        not indexed) in one transaction: an import's batch, without a round
        trip per row on a server. Returns the new messages' ids."""
        ...

    def message(self, scope: Scope, message_id: int) -> Message | None: ...

    def messages(
        self,
        scope: Scope,
        conversation_id: str,
        *,
        after_id: int = 0,
        limit: int | None = None,
    ) -> list[Message]:
        """In order; with ``limit``, the last ``limit`` of them."""
        ...

    # ------------------------------------------------------------- memories
    def add_memory(self, scope: Scope, memory: NewMemory, vector: Sequence[float]) -> int:
        """Insert with its keyword and vector entries; returns a fresh id.
        References (source message, conversation) must be the scope's own."""
        ...

    def update_memory(
        self,
        scope: Scope,
        memory_id: int,
        patch: MemoryPatch,
        vector: Sequence[float] | None = None,
    ) -> Memory:
        """Change one of the scope's own memories (a shared one: NotFoundError).
        A new ``content`` needs its ``vector``."""
        ...

    def touch(self, scope: Scope, ids: Iterable[int], at: str) -> None:
        """Count a use of each readable memory (``use_count``, ``last_used_at``)."""
        ...

    def memory(self, scope: Scope, memory_id: int) -> Memory:
        """One readable memory, or NotFoundError (the same for another scope's)."""
        ...

    def memories(self, scope: Scope, ids: Iterable[int]) -> list[Memory]:
        """The readable ones of ``ids``, in that order; others passed over."""
        ...

    def list_memories(
        self, scope: Scope, filters: MemoryFilter, *, limit: int | None = None
    ) -> list[Memory]:
        """Readable memories passing ``filters``, newest id first."""
        ...

    def counts(self, scope: Scope) -> Counts: ...

    def delete_memories(
        self, scope: Scope, ids: Iterable[int], *, reason: str, actor: str = "user"
    ) -> list[int]:
        """Delete rows of the scope's own namespace that nothing derives from
        (document chunks, expired rows): row, keyword and vector entries;
        earlier events lose their text and a ``forget`` event records
        ``reason``. Returns the ids deleted; others are passed over."""
        ...

    # ------------------------------------------------------------ documents
    def put_document(self, scope: Scope, document: DocumentInfo, *, at: str = "") -> None:
        """Insert or replace the scope's row for ``document.path``."""
        ...

    def documents(self, scope: Scope, *, path: str | None = None) -> list[Document]: ...

    def remove_document(self, scope: Scope, path: str, *, reason: str) -> int:
        """The file's row and its chunks (lineage: chunks derive from the file),
        audited; returns how many chunks were deleted."""
        ...

    # ---------------------------------------------------------------- audit
    def add_event(self, scope: Scope, event: NewEvent) -> int:
        """Audit a change of one of the scope's own memories (or of none)."""
        ...

    def events(self, scope: Scope, memory_id: int) -> list[Event]:
        """The trail of a readable memory, or of one this scope forgot."""
        ...

    def mark_event(self, scope: Scope, event_id: int, detail: Mapping[str, object]) -> None:
        """Merge keys into an event's detail (``undone``)."""
        ...

    def last_events(
        self,
        scope: Scope,
        *,
        events: Sequence[str],
        limit: int = 1,
        batch: str | None = None,
    ) -> list[Event]:
        """The scope's newest events of these types, newest first, leaving out
        those marked ``undone`` and those undo made itself; ``batch``: only
        those whose detail names that batch (``/undo`` of one consolidation)."""
        ...

    # ---------------------------------------------------------- search legs
    def keyword_stats(self, scope: Scope) -> KeywordStats:
        """Rows and tokens of the keyword index in the scope's namespaces."""
        ...

    def keyword_scores(
        self,
        scope: Scope,
        term: str,
        filters: MemoryFilter,
        *,
        column: Column = "content",
        limit: int = 50,
        newest: int | None = None,
    ) -> dict[int, float]:
        """BM25 of one term (a phrase) over one column: {memory id: score},
        the best ``limit``. Statistics (rows, average length, document
        frequency) are the scope's own, so another namespace's rows never
        change a score. ``newest`` scores only that many newest matches."""
        ...

    def keyword_match(self, scope: Scope, terms: Sequence[str], filters: MemoryFilter) -> list[int]:
        """Ids of memories of the scope's own namespace holding every term
        (the index's stemming), oldest first: ``forget --query``."""
        ...

    def nearest(
        self,
        scope: Scope,
        vector: Sequence[float],
        filters: MemoryFilter,
        *,
        k: int,
        exact: bool | None = None,
    ) -> dict[int, float]:
        """Up to ``k`` readable memories nearest ``vector``: {id: cosine}.
        ``exact`` None lets the backend choose (an index for a broad scan)."""
        ...

    def similarities(
        self, scope: Scope, vector: Sequence[float], ids: Iterable[int]
    ) -> dict[int, float]:
        """Exact cosine similarity of ``vector`` to each readable one of ``ids``."""
        ...

    def session_neighbours(
        self,
        scope: Scope,
        anchors: Iterable[int],
        window: int,
        filters: MemoryFilter,
    ) -> dict[int, list[tuple[int, int]]]:
        """For each anchor message memory, the up to ``window`` message memories
        before and after it in its conversation: anchor -> [(id, offset)],
        offset -1, -2 … before and 1, 2 … after; those failing ``filters``
        are left out (their offsets still count)."""
        ...

    def speakers(
        self, scope: Scope, term: str, filters: MemoryFilter, *, limit: int = 5
    ) -> list[str]:
        """Speakers ("" for none) of up to ``limit`` memories whose speaker
        matches ``term`` (the index's stemming): is the term a name?"""
        ...

    def briefs(self, scope: Scope, ids: Iterable[int], filters: MemoryFilter) -> list[MemoryBrief]:
        """What ranking reads of each readable one of ``ids`` passing
        ``filters``, without the text, in the order of ``ids``."""
        ...

    def row_bound(self, scope: Scope) -> int:
        """A cheap upper bound on the scope's memory rows (no scan): whether
        an exact vector scan is cheap."""
        ...

    # ------------------------------------------------------ for the store
    @property
    def encrypted(self) -> bool:
        """Whether what the backend stores is encrypted at rest by mem (SQLCipher):
        then nothing beside it may be written in plaintext (the input history)."""
        ...

    def namespaces(self, scope: Scope) -> list[str]:
        """Every namespace holding rows that this connection may see, sorted:
        the whole store for the file's owner or a server's owner role, only its
        own (and granted) ones for a member role. What ``mem copy`` copies."""
        ...

    def change_mark(self, scope: Scope) -> int:
        """A number that moves whenever a memory the scope reads is added,
        changed or forgotten (the audit trail's newest id): callers cache
        what they read until it moves. It may also move for other writes."""
        ...

    def taken(
        self, scope: Scope, *, conversation: str | None = None, import_key: str | None = None
    ) -> bool:
        """Whether another namespace holds this conversation id or message
        import key (one namespace in the file), saying nothing of whose."""
        ...

    def message_id(self, scope: Scope, import_key: str) -> int | None:
        """The scope's own message with this import key."""
        ...

    def event(self, scope: Scope, event_id: int) -> Event | None:
        """One event of the trail of a memory :meth:`events` shows."""
        ...

    def reindex(
        self,
        scope: Scope,
        embedder: str,
        dim: int,
        embed: Callable[[list[str]], Sequence[Sequence[float]]],
        *,
        progress: Callable[[int, int], None] | None = None,
        batch: int = 256,
    ) -> int:
        """Rebuild every vector with ``embed`` (a batch at a time, no lock held
        while embedding) and then record ``embedder``; interrupted, it changes
        nothing and the next call resumes. Returns the number of memories."""
        ...

    # ------------------------------------------------ lineage and forgetting
    def lineage(self, scope: Scope, message_ids: Iterable[int]) -> Lineage:
        """What derives from the scope's own ``message_ids``."""
        ...

    def forget(
        self,
        scope: Scope,
        ids: Sequence[int],
        *,
        with_source: bool = False,
        scrub: Scrub | None = None,
        at: str = "",
    ) -> ForgetResult:
        """Delete memories of the scope's own namespace and, following lineage,
        everything derived, in one transaction. A message memory takes its
        message (``with_source``: any memory does); a deleted message takes
        its :meth:`lineage`, and the running summary that folded it in. A
        memory it superseded is restored. ``scrub`` names texts without
        lineage (other summaries, titles, audit text) to blank as well. An id
        not in the namespace raises NotFoundError and forgets nothing.
        Outside an enclosing transaction, :meth:`scrub` runs after commit."""
        ...

    def scrub(self, scope: Scope) -> bool:
        """Remove deleted text from side storage (WAL, index segments, free
        pages). False: another reader held on; the backend retries later."""
        ...
