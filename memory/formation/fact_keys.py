"""Facts as extra search keys for imported conversations (``mem import --extract``).

A question rarely shares words with the turn that answers it ("When did Priya start the
pottery class?" against "I signed up for a ceramics course yesterday"). A model reads each
session once and writes self-contained facts that name people and dates; each fact is indexed
as a memory of kind ``fact`` (source ``fact-key``) that points back at the message it came
from, so a search that matches the fact leads to the message (LongMemEval, Wu et al. 2024,
found such keys raise recall by about four points).

Each fact key carries its provenance three ways: ``source_message_id`` and ``external_id`` of
its (first) source message, and ``metadata["source_external_ids"]`` /
``metadata["source_message_ids"]`` with every message it was found in (the same fact met again
in another message of the conversation is merged into the existing key, not duplicated).

Idempotent: each processed message is flagged in ``messages.metadata`` (``fact_keys``), and
only unflagged messages are read again, so re-running adds nothing and a window that failed
is retried next time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from memory import timeutil
from memory.errors import MemError, NoModelError
from memory.storage import MemoryFilter, MemoryPatch, Scope

if TYPE_CHECKING:
    import os

    from memory.formation.extraction import Candidate
    from memory.lifecycle.transfer import Progress
    from memory.store import MemoryStore

SOURCE = "fact-key"
TAG = "fact_keys"  # set in a message's metadata once extraction has read it
WINDOW = 10  # turns per window when messages do not come in sessions
MAX_SESSION = 40  # a longer session is cut into windows of this many turns
MAX_CONSECUTIVE_FAILURES = 3  # then stop: the provider is down or the model is wrong
NO_MODEL_HELP = (
    "No model configured for --extract: pass --model (e.g. --model openai/gpt-4o-mini), "
    'set MEM_MODEL, or put model = "..." in the config file.'
)

Complete = Callable[[list[dict[str, str]]], str]


@dataclass
class Turn:
    """One message as the extractor sees it."""

    id: int
    role: str
    speaker: str | None
    content: str
    created_at: str
    external_id: str | None


@dataclass
class FactKeyReport:
    conversations: int = 0
    windows: int = 0
    facts_added: int = 0
    facts_merged: int = 0
    facts_unsourced: int = 0
    failed: int = 0
    not_attempted: int = 0
    first_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversations": self.conversations,
            "windows": self.windows,
            "facts_added": self.facts_added,
            "facts_merged": self.facts_merged,
            "facts_unsourced": self.facts_unsourced,
            "failed": self.failed,
            "not_attempted": self.not_attempted,
            "first_error": self.first_error,
        }


def require_model(model: str | None) -> str:
    """The model name, or NoModelError saying how to configure one."""
    if not model:
        raise NoModelError(NO_MODEL_HELP)
    return model


def model_completer(model: str, *, api_base: str | None = None) -> Complete:
    """``complete(messages) -> text`` through :class:`memory.models.llm.ChatModel` (made on
    first use, so that building the function never imports litellm)."""
    chat: list[Any] = []

    def complete(messages: list[dict[str, str]]) -> str:
        if not chat:
            from memory.models.llm import ChatModel

            chat.append(ChatModel(model, api_base=api_base))
        return str(chat[0].complete(messages, json_schema=None))

    return complete


def file_conversations(source: str | os.PathLike[str] | IO[bytes]) -> list[str]:
    """Conversation ids of the message lines of an import file, in order of appearance.

    Read again after the import because the import report lists only conversations that
    gained messages, and ``--extract`` must also cover a file imported earlier without it.
    """
    from memory.lifecycle.transfer import parse_lines

    def collect(lines: Iterable[bytes]) -> list[str]:
        seen: dict[str, None] = {}
        for _, obj in parse_lines(lines, "import"):
            conv = obj.get("conversation")
            if obj.get("type", "message") == "message" and isinstance(conv, str | int):
                seen.setdefault(str(conv), None)
        return list(seen)

    if hasattr(source, "read"):
        stream: IO[bytes] = source  # type: ignore[assignment]
        stream.seek(0)
        return collect(stream)
    with open(source, "rb") as handle:
        return collect(handle)


def pending_turns(store: MemoryStore, conversation: str) -> list[Turn]:
    """Messages of ``conversation`` (this profile) that no extraction has read yet."""
    found = store.backend.untagged_messages(store.scope, conversation, TAG)
    return [Turn(m.id, m.role, m.speaker, m.content, m.created_at, m.external_id) for m in found]


def windows(
    turns: Sequence[Turn], *, window: int = WINDOW, max_session: int = MAX_SESSION
) -> list[list[Turn]]:
    """Group turns into what one extraction call reads.

    A session is a run of turns with the same timestamp (imported logs such as LoCoMo stamp
    every turn of a session alike); a long session is read whole up to ``max_session`` turns,
    because facts need their context. Sessions shorter than ``window`` (chat logs where each
    turn has its own time) are packed together into windows of about ``window`` turns.
    """
    sessions: list[list[Turn]] = []
    for turn in turns:
        if sessions and sessions[-1][-1].created_at == turn.created_at:
            sessions[-1].append(turn)
        else:
            sessions.append([turn])
    out: list[list[Turn]] = []
    packing = False  # is out[-1] a window of packed short sessions?
    for session in sessions:
        if len(session) >= window:
            out += [session[i : i + max_session] for i in range(0, len(session), max_session)]
            packing = False
        elif packing and len(out[-1]) + len(session) <= window:
            out[-1] += session
        else:
            out.append(list(session))
            packing = True
    return out


def _date(stamp: str) -> str:
    try:
        moment: datetime = timeutil.from_iso(stamp)
    except ValueError:
        return stamp[:10]
    return f"{moment.day} {moment:%B %Y}"


def prompt_messages(turns: Sequence[Turn]) -> tuple[list[dict[str, str]], str | None]:
    """The extractor's input for one window, and its subject.

    When every turn names its speaker (a conversation between people), each message is
    prefixed with the speaker and date, all count as "user" turns (both people are sources of
    facts), and the subject is the speakers; otherwise it is a user/assistant log and the
    extractor's usual prompt about "the user" applies.
    """
    if turns and all(t.speaker for t in turns):
        names = list(dict.fromkeys(str(t.speaker) for t in turns))
        subject = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        chat = [
            {"role": "user", "content": f"{t.speaker} ({_date(t.created_at)}): {t.content}"}
            for t in turns
        ]
        return chat, subject
    return [{"role": t.role, "content": t.content} for t in turns], None


def _existing_keys(store: MemoryStore, conversation: str) -> dict[str, tuple[int, dict[str, Any]]]:
    filters = MemoryFilter(conversation=conversation, include_inactive=True)
    found = store.backend.list_memories(Scope(store.profile), filters)  # newest first
    return {m.content.casefold(): (m.id, m.metadata) for m in reversed(found) if m.source == SOURCE}


def _store_window(
    store: MemoryStore,
    conversation: str,
    turns: Sequence[Turn],
    found: Sequence[Candidate],
    keys: dict[str, tuple[int, dict[str, Any]]],
    report: FactKeyReport,
) -> None:
    """Write the window's facts and flag its messages, in one transaction."""
    sourced = [c for c in found if c.kind == "fact" and c.source_index is not None]
    report.facts_unsourced += len(found) - len(sourced)
    new = [c for c in sourced if c.text.strip().casefold() not in keys]
    texts = list(dict.fromkeys(c.text.strip() for c in new))
    vectors = dict(zip(texts, store.embedder.embed(texts), strict=True)) if texts else {}
    with store.backend.transaction(store.scope):
        for cand in sourced:
            assert cand.source_index is not None
            turn = turns[cand.source_index]
            text = cand.text.strip()
            if not text:
                continue
            key = text.casefold()
            if key in keys:
                mid, meta = keys[key]
                ids = meta.setdefault("source_message_ids", [])
                if turn.id in ids:
                    continue
                ids.append(turn.id)
                if turn.external_id:
                    meta.setdefault("source_external_ids", []).append(turn.external_id)
                store.backend.update_memory(store.scope, mid, MemoryPatch(metadata=meta))
                report.facts_merged += 1
                continue
            meta = {
                "fact_key": True,
                "source_external_ids": [turn.external_id] if turn.external_id else [],
                "source_message_ids": [turn.id],
            }
            mid = store.add_memory(
                text,
                kind="fact",
                source=SOURCE,
                importance=cand.importance,
                confidence=cand.confidence,
                source_message_id=turn.id,
                conversation=conversation,
                external_id=turn.external_id,
                created_at=turn.created_at,
                metadata=meta,
                vector=vectors[text],
                actor="extract",
            )
            keys[key] = (mid, meta)
            report.facts_added += 1
        store.backend.tag_messages(store.scope, [t.id for t in turns], TAG)


def extract_fact_keys(
    store: MemoryStore,
    complete: Complete,
    conversations: Sequence[str],
    *,
    window: int = WINDOW,
    progress: Progress | None = None,
) -> FactKeyReport:
    """Run the extractor over the unread messages of ``conversations`` and index the facts.

    A window that fails (bad JSON, a provider error) is counted and left unflagged for the
    next run; after MAX_CONSECUTIVE_FAILURES failures in a row the rest is not attempted.
    """
    from memory.formation.extraction import extract_with_model

    report = FactKeyReport(conversations=len(conversations))
    plan = [(c, w) for c in conversations for w in windows(pending_turns(store, c), window=window)]
    report.windows = len(plan)
    keys_by_conv: dict[str, dict[str, tuple[int, dict[str, Any]]]] = {}
    streak = 0
    for done, (conv, turns) in enumerate(plan, start=1):
        if streak >= MAX_CONSECUTIVE_FAILURES:
            report.not_attempted = len(plan) - done + 1
            break
        chat, subject = prompt_messages(turns)
        try:
            found = extract_with_model(complete, chat, (), subject)
        except MemError as err:
            report.failed += 1
            report.first_error = report.first_error or str(err)
            streak += 1
        else:
            streak = 0
            if conv not in keys_by_conv:
                keys_by_conv[conv] = _existing_keys(store, conv)
            _store_window(store, conv, turns, found, keys_by_conv[conv], report)
        if progress:
            progress(done, len(plan))
    return report
