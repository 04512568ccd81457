"""Build and store episodes: each ended session of a conversation becomes one memory of kind
``episode`` (see :mod:`memory.formation.episodes` for what it holds and how it is made).

An episode is stored with its conversation, its start as ``created_at`` (so it is dated like
its turns), its text (title, day, participants, gist) indexed for search, and in its metadata
the title, span, participants, decisions, open questions and ``message_ids``, its lineage.
Forgetting one of those messages deletes the conversation's episodes in the same transaction
(the storage seam's lineage); :func:`build_episodes` then writes them again from the turns
that are left.

Idempotent: a session whose episode already exists (same span, same number of turns) is
skipped; an episode whose messages no longer form a session (the conversation went on,
turns were forgotten) is replaced. The ``message_ids`` are this database's; an export
keeps the span, which is what opens an episode's turns elsewhere (``mem show``). A
session still going on (its last turn newer than the idle gap) has not ended and gets
no episode unless ``open_sessions`` is set.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from memory import timeutil
from memory.formation.episodes import IDLE_GAP, EpisodeDraft, extract, session_frequencies, sessions
from memory.storage import MemoryFilter

if TYPE_CHECKING:
    from memory.records import Memory, Message
    from memory.store import MemoryStore

SOURCE = "episode"
Complete = Callable[[list[dict[str, str]]], str]
Progress = Callable[[int, int], None]


@dataclass
class EpisodeReport:
    conversations: int = 0
    added: int = 0
    kept: int = 0
    removed: int = 0
    by_model: int = 0
    model_failed: int = 0
    ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # every field, by its own name


def episodes_of(store: MemoryStore, conversation: str | None = None) -> list[Memory]:
    """The profile's episodes (of one conversation), oldest first."""
    filters = MemoryFilter(kinds=("episode",), conversation=conversation)
    found = store.backend.list_memories(store.scope, filters)
    return sorted(found, key=lambda m: (m.created_at, m.id))


def ended(group: Sequence[Message], gap: timedelta, now: str | None = None) -> bool:
    """Whether a session is over: its last turn is older than the idle gap."""
    moment = timeutil.from_iso(now) if now else timeutil.now()
    return moment - timeutil.from_iso(group[-1].created_at) > gap


def _key(group: Sequence[Message]) -> tuple[str, str, int]:
    """What identifies a session's episode: its span and its number of turns (an export
    keeps these, not the message ids; a turn forgotten or added changes them)."""
    return (group[0].created_at, group[-1].created_at, len(group))


def _stored_key(memory: Memory) -> tuple[str, str, int]:
    meta = memory.metadata
    ids = meta.get("message_ids")
    return (str(meta.get("start")), str(meta.get("end")), len(ids) if isinstance(ids, list) else 0)


def build_episodes(
    store: MemoryStore,
    conversations: Sequence[str],
    *,
    complete: Complete | None = None,
    gap: timedelta = IDLE_GAP,
    open_sessions: bool = False,
    progress: Progress | None = None,
) -> EpisodeReport:
    """Write the episodes of ``conversations`` (see the module docstring). ``complete``
    (a model's) writes each episode; offline extraction is the fallback when it fails."""
    report = EpisodeReport()
    for done, conv in enumerate(conversations, start=1):
        report.conversations += 1
        _build_one(store, conv, complete, gap, open_sessions, report)
        if progress:
            progress(done, len(conversations))
    return report


def _build_one(
    store: MemoryStore,
    conversation: str,
    complete: Complete | None,
    gap: timedelta,
    open_sessions: bool,
    report: EpisodeReport,
) -> None:
    messages = [m for m in store.messages(conversation) if m.content.strip()]
    groups = sessions(messages, gap)
    df, n = session_frequencies(groups)
    if groups and not open_sessions and not ended(groups[-1], gap):
        groups = groups[:-1]
    existing = {_stored_key(m): m for m in episodes_of(store, conversation)}
    wanted = {_key(g) for g in groups}
    stale = [m.id for key, m in existing.items() if key not in wanted]
    if stale:
        report.removed += store.delete_memories(stale, reason="episode rebuilt", actor="episodes")
    drafts: list[EpisodeDraft] = []
    for group in groups:
        if _key(group) in existing:
            report.kept += 1
            continue
        draft = None
        if complete is not None:
            from memory.formation.episode_model import write_episode

            draft = write_episode(complete, group)
            if draft is None:
                report.model_failed += 1
            else:
                report.by_model += 1
        drafts.append(draft or extract(group, df, n))
    if not drafts:
        return
    vectors = store.embedder.embed([d.content() for d in drafts])
    for draft, vector in zip(drafts, vectors, strict=True):
        memory_id = store.add_memory(
            draft.content(),
            kind="episode",
            source=SOURCE,
            conversation=conversation,
            created_at=draft.start,
            metadata=draft.metadata(conversation),
            vector=vector,
            actor="episodes",
            detail={"method": draft.method},
        )
        report.added += 1
        report.ids.append(memory_id)


@contextlib.contextmanager
def rebuild_after_forget(store: MemoryStore) -> Iterator[None]:
    """Around a forget: the episodes it removed (lineage deletes a forgotten message's
    episodes) are written again, offline, from the turns that are left, so no episode
    keeps the forgotten text and none goes missing. Conversations that had no episodes
    are left alone."""
    before = {(m.id, m.conversation) for m in episodes_of(store)}
    yield
    after = {m.id for m in episodes_of(store)}
    lost = sorted({conv for mid, conv in before if mid not in after and conv})
    if lost:
        build_episodes(store, [c for c in lost if store.conversation_exists(c)], open_sessions=True)
