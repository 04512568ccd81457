"""The running summary of a conversation: when turns are folded into it, the
model's prompt for that, and the offline extract used when no (capable) model
is there or it fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from memory.config import Config
from memory.errors import MemError
from memory.models.tokens import at_most
from memory.records import Message

if TYPE_CHECKING:
    from memory.store import MemoryStore

Complete = Callable[[list[dict[str, str]]], str]

SUMMARY_PROMPT = (
    "You maintain a running summary of a conversation between a user and an assistant. "
    "Merge the existing summary with the new turns into one concise summary (at most 200 "
    "words) that keeps facts, decisions, open questions and names. Answer with the summary "
    "only."
)


def summary_request(summary: str | None, turns: list[Message]) -> list[dict[str, str]]:
    """The chat messages asking a model to merge ``turns`` into ``summary``."""
    transcript = "\n".join(f"{m.role}: {m.content}" for m in turns)
    return [
        {"role": "system", "content": SUMMARY_PROMPT},
        {
            "role": "user",
            "content": f"Existing summary:\n{summary or '(none)'}\n\nNew turns:\n{transcript}",
        },
    ]


def extractive_summary(
    summary: str | None, turns: list[Message], count: Callable[[str], int], cap: int
) -> str:
    """Offline fallback: the first sentence of each turn, oldest dropped past ``cap``."""
    lines = [line for line in (summary or "").splitlines() if line.strip()]
    for m in turns:
        first = m.content.strip().split("\n", 1)[0]
        for stop in (". ", "? ", "! "):
            if stop in first:
                first = first.split(stop, 1)[0] + stop.strip()
                break
        lines.append(f"- {m.role}: {first[:200]}")
    while len(lines) > 1 and count("\n".join(lines)) > cap:
        lines.pop(0)
    return "\n".join(lines)


def fold_summary(
    store: MemoryStore,
    conversation: str,
    settings: Config,
    count: Callable[[str], int],
    complete: Complete | None,
    warn: Callable[[str], None],
) -> bool:
    """Fold turns older than the window into ``conversation``'s stored summary
    once the unsummarised buffer passes ``summary_trigger_tokens``
    (``summary``: always); with ``complete`` a model writes it, else (or when
    it fails, said through ``warn``) an extract. True when it was folded."""
    summary, upto = store.summary(conversation)
    pending = store.messages(conversation, after_id=upto)
    if settings.memory == "summary-buffer":
        # The free bound first: most turns are far below the trigger.
        bounded = sum(at_most(m.content) for m in pending)
        limit = settings.summary_trigger_tokens
        tokens = bounded if bounded <= limit else sum(count(m.content) for m in pending)
        if tokens <= limit:
            return False
        keep = settings.window * 2
        pending = pending[:-keep] if keep < len(pending) else []
    if not pending:
        return False
    new_summary = None
    if complete is not None:
        try:
            new_summary = complete(summary_request(summary, pending)).strip()
        except MemError as err:
            warn(f"summarising with the model failed ({err}); kept an extract")
    if new_summary is None:
        cap = max(settings.summary_trigger_tokens // 2, 150)
        new_summary = extractive_summary(summary, pending, count, cap)
    store.set_summary(conversation, new_summary, pending[-1].id)
    return True
