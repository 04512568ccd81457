"""When a chat's session ends, it becomes an episode (:mod:`memory.formation.episode_build`).

A session ends when the conversation does (``/new``, leaving the REPL) or when a message
comes after an idle gap (:data:`memory.formation.episodes.IDLE_GAP`): the turns before the
gap are then one finished session. Checking costs one read of the conversation's last two
messages per turn; the episode is built only when one of those two things happened, after
the reply (in the background in the REPL). A capable model writes it; the embedded local
model and no model leave it to offline extraction, as the summary does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from memory import timeutil
from memory.errors import MemError
from memory.formation.episode_build import Complete, build_episodes
from memory.formation.episodes import IDLE_GAP
from memory.models.local_model import is_local

if TYPE_CHECKING:
    from memory.config import Config
    from memory.models.llm import ChatModel
    from memory.store import MemoryStore


class Assistant(Protocol):
    """What closing episodes needs of memory.assistant.turn.Assistant (named here so
    this module does not import the one that imports it)."""

    store: MemoryStore
    settings: Config
    conversation: str | None

    @property
    def model(self) -> ChatModel: ...


def _complete(assistant: Assistant) -> Complete | None:
    name = assistant.settings.model
    if not name or is_local(name):
        return None

    def complete(messages: list[dict[str, str]]) -> str:
        return assistant.model.complete(messages)

    return complete


def session_ended(assistant: Assistant) -> bool:
    """Whether the newest message came after an idle gap (the session before it ended)."""
    if assistant.conversation is None:
        return False
    last = assistant.store.messages(assistant.conversation, limit=2)
    if len(last) < 2:
        return False
    gap = timeutil.from_iso(last[1].created_at) - timeutil.from_iso(last[0].created_at)
    return gap > IDLE_GAP


def close_episodes(assistant: Assistant, *, conversation_over: bool = False) -> list[int]:
    """Build the episodes of the assistant's conversation that ended; their ids.
    ``conversation_over``: its last session ended too. A model error falls back to
    extraction inside the build; a storage error is the caller's to report."""
    conv = assistant.conversation
    if conv is None or not (conversation_over or session_ended(assistant)):
        return []
    try:
        complete = _complete(assistant)
    except MemError:
        complete = None
    report = build_episodes(
        assistant.store, [conv], complete=complete, open_sessions=conversation_over
    )
    return report.ids
