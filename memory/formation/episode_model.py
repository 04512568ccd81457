"""Episodes written by a model: the same fields as the offline extraction, in the model's
words. The model reads the session's turns (speaker, day, text) and answers with one JSON
object; the span, participants and lineage always come from the turns themselves, never
from the model. An answer that is not that JSON, or has no title or gist, is a failure:
the caller falls back to extraction, so an episode is never empty.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from memory.errors import MemError
from memory.formation.episodes import MAX_ITEMS, EpisodeDraft, terms
from memory.records import Message

Complete = Callable[[list[dict[str, str]]], str]
MAX_TURN_CHARS = 2_000  # one turn's text in the prompt; a pasted file is cut
SYSTEM = (
    "You write the memory of one past conversation session as a single JSON object with "
    'the keys "title" (at most eight words), "gist" (two to five short sentences that name '
    'people, places and dates), "decisions" (what was decided or promised, a list of short '
    'sentences, may be empty) and "open_questions" (what was asked and left unresolved, a '
    "list, may be empty). Use only what the turns say. Answer with the JSON object only."
)


def prompt(group: Sequence[Message]) -> list[dict[str, str]]:
    lines = [
        f"{m.speaker or m.role} ({m.created_at[:10]}): {m.content[:MAX_TURN_CHARS]}" for m in group
    ]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [str(v).strip() for v in value if isinstance(v, str | int | float) and str(v).strip()]


def parse(text: str) -> dict[str, Any] | None:
    """The JSON object of a model's answer (inside a code fence or not), or None."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        found = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    return found if isinstance(found, dict) else None


def write_episode(complete: Complete, group: Sequence[Message]) -> EpisodeDraft | None:
    """The model's episode of ``group``, or None when the model failed (any error)."""
    try:
        answer = complete(prompt(group))
    except (MemError, OSError, ValueError):
        return None
    found = parse(answer)
    if found is None:
        return None
    title = " ".join(str(found.get("title") or "").split())[:120]
    gist = _strings(found.get("gist"))
    if not title or not gist:
        return None
    participants = list(dict.fromkeys(m.speaker or m.role for m in group))
    words = {t for line in gist for t in terms(line)}
    return EpisodeDraft(
        title=title,
        start=group[0].created_at,
        end=group[-1].created_at,
        participants=participants,
        gist=gist,
        decisions=_strings(found.get("decisions"))[:MAX_ITEMS],
        open_questions=_strings(found.get("open_questions"))[:MAX_ITEMS],
        topics=sorted(words)[:12],
        message_ids=[m.id for m in group],
        method="model",
    )
