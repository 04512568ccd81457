"""The public API: one open memory database and every verb the CLI offers.

``Memory`` is what a Python program (and each ``mem`` command) calls: open it,
call one method, read the record it returns. It never prints. The verbs live in
their own modules (retrieval, forgetting, transfer, documents, retention…),
which may import the store; the store imports none of them, so this facade is
where they meet.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory.api_transfer import Progress, TransferVerbs
from memory.config import (
    Config,
    is_server_url,
    load_config,
    resolve_db,
    resolve_embedder,
    resolve_model,
    resolve_profile,
)
from memory.errors import UsageError
from memory.records import Event, Hit, Message
from memory.records import Memory as MemoryRecord
from memory.store import MemoryStore

if TYPE_CHECKING:
    from memory.assistant.turn import Assistant
    from memory.eval.evaluation import EvalReport, StageProgress
    from memory.knowledge.documents import AddReport, Document
    from memory.lifecycle.forgetting import ForgetReport
    from memory.lifecycle.retention import PruneReport
    from memory.lifecycle.tending import TendReport

# Aliases: inside Memory, `list` names the verb.
Hits = list[Hit]
Records = list[MemoryRecord]
Events = list[Event]
Lines = list[str]
Rows = list[dict[str, Any]]


@dataclass
class MemoryDetail:
    """One memory as ``mem show`` presents it: the row, the message it was
    drawn from (when any) and its audit history, oldest first."""

    memory: MemoryRecord
    source_message: Message | None = None
    history: Events = field(default_factory=list)
    turns: builtins.list[Message] = field(default_factory=list)  # an episode's messages

    def to_dict(self) -> dict[str, Any]:
        data = self.memory.to_dict()
        data["source_message"] = self.source_message.to_dict() if self.source_message else None
        data["history"] = [e.to_dict() for e in self.history]
        if self.memory.kind == "episode":
            data["turns"] = [m.to_dict() for m in self.turns]
        return data


def _target(path_or_url: str | os.PathLike[str] | None) -> str | os.PathLike[str] | None:
    """A path, a ``sqlite:///path`` URL (the file), or a ``postgresql://`` URL
    (the server, opened through the ``postgres`` storage backend)."""
    if isinstance(path_or_url, str) and "://" in path_or_url:
        if is_server_url(path_or_url):
            return path_or_url
        scheme, _, rest = path_or_url.partition("://")
        if scheme != "sqlite" or not rest:
            # Not echoed: a URL may hold a password.
            raise UsageError(
                f"Unsupported database URL scheme {scheme[:20]!r}: give a file path, "
                "sqlite:///PATH or postgresql://user@host/dbname."
            )
        return rest
    return path_or_url


class Memory(TransferVerbs):
    """An open memory database (one profile's view of it) with every verb."""

    def __init__(self, store: MemoryStore, config: Config | None = None) -> None:
        self.store = store
        self.config = config or Config()

    @classmethod
    def open(
        cls,
        path_or_url: str | os.PathLike[str] | None = None,
        *,
        profile: str | None = None,
        embedder: str | None = None,
        secrets: str | None = None,
        allow_embedder_change: bool = False,
        config: Config | None = None,
    ) -> Memory:
        """Open (creating) the database the way every ``mem`` command does: the
        arguments first, then MEM_PROFILE / MEM_EMBEDDER, then the config file."""
        cfg = config if config is not None else load_config()
        store = MemoryStore.open(
            _target(resolve_db(path_or_url, cfg)),
            embedder=resolve_embedder(embedder, cfg),
            profile=resolve_profile(profile, cfg),
            allow_embedder_change=allow_embedder_change,
            secrets=secrets or cfg.secrets,
        )
        store.half_life_days = cfg.recency_half_life_days
        return cls(store, cfg)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def profile(self) -> str:
        return self.store.profile

    @property
    def path(self) -> Path:
        return Path(self.store.path)

    @property
    def location(self) -> str:
        """The database as shown to the user: the file, or the server's URL
        without its password."""
        return self.store.location

    @property
    def embedder(self) -> str:
        """The name of the embedder the database is built with."""
        return self.store.embedder.name

    # ------------------------------------------------------------ memories
    def remember(
        self,
        text: str,
        *,
        kind: str = "fact",
        importance: float = 0.5,
        tags: Sequence[str] = (),
        source: str = "user",
    ) -> MemoryRecord:
        """Store a fact or a standing instruction (secrets redacted per policy);
        ``source`` names who said it (``mcp:Cursor`` for an MCP client)."""
        return self.store.remember(text, kind=kind, importance=importance, tags=tags, source=source)

    def add_example(
        self,
        input: str,
        output: str,
        *,
        task: str | None = None,
        source_messages: Sequence[int] = (),
        conversation: str | None = None,
    ) -> MemoryRecord:
        """Store an in-context example (kind ``example``): a message resembling
        ``input`` gets it in the prompt as the wanted reply ``output``. Its content
        is the input; ``metadata`` holds ``output`` and ``task``. ``source_messages``:
        the exchange it was kept from (forgetting one forgets the example)."""
        from memory.assistant.examples import add_example

        return add_example(
            self.store,
            input,
            output,
            task=task,
            source_message_ids=source_messages,
            conversation=conversation,
        )

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        kinds: str | Sequence[str] | None = None,
        since: str | None = None,
        until: str | None = None,
        conversation: str | None = None,
        include_inactive: bool = False,
        where: Sequence[str | tuple[str, str, str]] | None = None,
    ) -> Hits:
        """Hybrid keyword + vector search (see :func:`memory.retrieval.search.find`)."""
        from memory.retrieval.search import find

        return find(
            self.store,
            query,
            limit=limit,
            kinds=kinds,
            since=since,
            until=until,
            conversation=conversation,
            include_inactive=include_inactive,
            where=where,
        )

    def select(
        self, *, query: str | None = None, older_than: str | None = None, kind: str | None = None
    ) -> Records:
        """What ``forget --query WORDS`` or ``--older-than 90d`` would forget
        (every word, stemmed; not search's ranking): shown before confirming."""
        from memory.lifecycle.forgetting import select_by_query, select_older_than

        if (query is None) == (older_than is None):
            raise UsageError("Select by words or by age: give query or older_than, not both.")
        if query is not None:
            return select_by_query(self.store, query, kind=kind)
        return select_older_than(self.store, older_than or "", kind=kind)

    def forget(
        self, ids: Sequence[int], *, with_source: bool = False, query: str | None = None
    ) -> ForgetReport:
        """Delete memories for real, with what derives from them; an unknown id
        is a NotFoundError before anything is deleted. ``query``: the words they
        were selected by, scrubbed from derived copies too."""
        from memory.formation.episode_build import rebuild_after_forget
        from memory.lifecycle.forgetting import forget

        targets = list(ids)
        for memory_id in targets:
            self.store.get(memory_id)
        with rebuild_after_forget(self.store):  # lineage removed them; rebuilt from what is left
            return forget(self.store, targets, with_source=with_source, query=query)

    def list(
        self,
        *,
        kind: str | None = None,
        include_inactive: bool = False,
        limit: int | None = None,
        conversation: str | None = None,
    ) -> Records:
        """Memories, newest first; without ``kind``, no messages or document chunks."""
        found = self.store.list_memories(
            kind=kind, include_inactive=include_inactive, limit=limit, conversation=conversation
        )
        if kind is None:  # the log and document chunks have conversations() and docs()
            found = [m for m in found if m.kind not in ("message", "document")]
        return found

    def get(self, memory_id: int) -> MemoryRecord:
        return self.store.get(memory_id)

    def show(self, memory_id: int) -> MemoryDetail:
        """One memory with the message it came from and its history."""
        memory = self.store.get(memory_id)
        source = memory.source_message_id
        return MemoryDetail(
            memory=memory,
            source_message=self.store.message(source) if source else None,
            history=self.store.history(memory_id),
            turns=self._turns(memory),
        )

    def _turns(self, memory: MemoryRecord) -> builtins.list[Message]:
        """An episode's messages, in order: those of its conversation in its time span
        (ids are not kept by an export, the conversation and the times are)."""
        meta = memory.metadata
        if memory.kind != "episode" or not memory.conversation:
            return []
        start = str(meta.get("start") or memory.created_at)
        end = str(meta.get("end") or start)
        msgs = self.store.messages(memory.conversation)
        return [m for m in msgs if start <= m.created_at <= end]

    def history(self, memory_id: int) -> Events:
        return self.store.history(memory_id)

    def undo(self) -> Lines:
        """Revert the newest batch of memory changes; one line per change."""
        from memory.formation.consolidation import undo_last

        return undo_last(self.store)

    def stats(self) -> dict[str, Any]:
        return self.store.stats()

    def conversations(self, limit: int = 50) -> Rows:
        return self.store.conversations(limit)

    def reindex(self, *, progress: Progress | None = None) -> int:
        """Rebuild every vector with this store's embedder (open it with
        ``embedder=NEW, allow_embedder_change=True`` to change embedders)."""
        return self.store.reindex(progress=progress)

    def prune(
        self, *, dry_run: bool = True, retention: dict[str, str] | None = None
    ) -> PruneReport:
        """Apply the retention policy (the config file's ``[retention]`` unless given)."""
        from memory.lifecycle.retention import prune

        policy = self.config.retention if retention is None else retention
        return prune(self.store, policy, dry_run=dry_run)

    def tend(self, *, apply: bool = False) -> TendReport:
        """Tending: merge near-duplicates, strengthen used memories, retire
        stale facts, refold dropped summaries (memory.lifecycle.tending); a
        plan unless ``apply``, then one batch that :meth:`undo` reverts."""
        from memory.assistant.sleep import run

        return run(self.store, self.config, apply=apply)

    # ----------------------------------------------------------- documents
    def add(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        exclude: Sequence[str] = (),
        sync: bool = False,
        force: bool = False,
        dry_run: bool = False,
        max_tokens: int | None = None,
        overlap: int | None = None,
        progress: Progress | None = None,
        warn: Callable[[str], None] | None = None,
        follow_links: bool = False,
    ) -> AddReport:
        """Index documents as knowledge of this profile (``mem add`` uses the
        shared ``_system`` one); unchanged files are not read again."""
        from memory.knowledge.chunking import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP
        from memory.knowledge.documents import add_documents

        return add_documents(
            self.store,
            paths,
            profile=self.profile,
            exclude=exclude,
            sync=sync,
            force=force,
            dry_run=dry_run,
            max_tokens=DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
            overlap=DEFAULT_OVERLAP if overlap is None else overlap,
            progress=progress,
            warn=warn,
            follow_links=follow_links,
        )

    def docs(self, *, contains: str | None = None) -> builtins.list[Document]:
        """Indexed files of every profile this one reads."""
        from memory.knowledge.documents import documents

        return documents(self.store, contains=contains)

    # ------------------------------------------------------ turns, measuring
    def assistant(
        self,
        model: str | None = None,
        *,
        settings: Config | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> Assistant:
        """An :class:`~memory.assistant.turn.Assistant` over this memory; ``model``
        (else MEM_MODEL, else the config's) answers the turns."""
        from memory.assistant.turn import Assistant

        chosen = settings or replace(self.config, model=resolve_model(model, self.config))
        return Assistant(self.store, chosen, warn=warn)

    def eval(
        self,
        directory: str | os.PathLike[str],
        *,
        ks: Sequence[int] | None = None,
        model: str | None = None,
        limit: int | None = None,
        progress: StageProgress | None = None,
    ) -> EvalReport:
        """Recall@k (k: 1, 5, 10, 20 and ``ks``), MRR and latency of DIR's questions
        against this database (``mem eval --live``); :func:`memory.evaluate` uses
        a temporary one."""
        from memory.eval.evaluation import KS, run_eval

        return run_eval(
            Path(directory),
            store=self.store,
            ks=tuple(sorted({*KS, *(ks or ())})),
            model=resolve_model(model, self.config),
            limit=limit,
            progress=progress,
        )
