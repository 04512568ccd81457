"""The running summary of a conversation: the model's prompt for folding turns
into it, and the offline extract used when no (capable) model is there."""

from __future__ import annotations

from collections.abc import Callable

from memory.records import Message

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
