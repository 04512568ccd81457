"""An episode found by a search opens into its best turns.

An episode (:mod:`memory.formation.episodes`) is found by its gist like any memory. Its
hit then carries, below its title and gist, the turns of its session that this search
scored best (up to :data:`TURNS_PER_EPISODE`, each with a score above zero): the event
and its evidence in one unit, dated once. The turns it carries are the ones the search
had ranked anyway, so an episode does not invent relevance; what it adds is the session
as a unit, which brings a second or third session's best turn into view for questions
whose answer is spread over several sessions.

The expanded hit says which turns it holds (``metadata["turns"]``, and their external ids in
``metadata["source_external_ids"]``, as a fact key names its sources), its text holds them
(so a prompt that shows the hit shows them, and its tokens count in the budget), and a turn
shown inside an episode is not repeated later in the results.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from memory.records import Hit
from memory.retrieval import legs

if TYPE_CHECKING:
    from memory.records import Memory
    from memory.retrieval.ranking import Candidate
    from memory.storage import Scope, StorageBackend

TURNS_PER_EPISODE = 3
# A question about the conversations themselves, not about a fact in them: what was
# decided, agreed, discussed or planned, what happened last time, what is still open.
EPISODIC = re.compile(
    r"\b(?:decid\w*|decision\w*|agree(?:d|ment)?|discuss\w*|talk(?:ed)? about|"
    r"conversations?|chat(?:ted)? about|meeting|last time|did we|have we|we (?:said|planned)|"
    r"open questions?|episodes?|sessions?)\b",
    re.IGNORECASE,
)


def asks_about_episodes(query: str) -> bool:
    """Whether ``query`` asks about a past conversation as an event (see EPISODIC). Other
    questions are answered by the turns themselves: an episode there would spend the
    prompt's tokens on a heading (LoCoMo: 1-2 points of recall within 2,000 tokens)."""
    return EPISODIC.search(query) is not None


def turn_line(turn: Hit | Memory) -> str:
    """One turn inside an episode's text, as the prompt shows a message."""
    return f"  - {turn.speaker or 'someone'} #{turn.id}: {turn.content}"


def lift(
    backend: StorageBackend,
    scope: Scope,
    scores: dict[int, float],
    cands: Mapping[int, Candidate],
) -> dict[int, float]:
    """An episode scores at least as well as its best turn: it is found where its
    session's evidence is, and holds that turn when it opens."""
    ids = [mid for mid, c in cands.items() if c.kind == "episode"]
    if not ids:  # the common case: nothing to copy
        return scores
    found = legs.hits(backend, scope, ids)
    out = dict(scores)
    by_conv: dict[str | None, list[int]] = {}
    for mid, c in cands.items():
        if c.kind == "message" and scores.get(mid, 0.0) > 0:
            by_conv.setdefault(c.conversation, []).append(mid)
    for mid, memory in found.items():
        start = memory.metadata.get("start") or memory.created_at
        end = memory.metadata.get("end") or start
        inside = [
            scores[t]
            for t in by_conv.get(memory.conversation, [])
            if start <= cands[t].created_at <= end
        ]
        out[mid] = max([scores.get(mid, 0.0), *inside])
    return out


def _any_inside(turns: Sequence[int], cands: Mapping[int, Candidate], start: str, end: str) -> bool:
    return any(start <= cands[t].created_at <= end for t in turns)


def heading(memory: Memory) -> str:
    """An expanded episode's first line: its title and who took part (the hit's line
    shows its day)."""
    title = memory.metadata.get("title")
    if not title:
        return memory.content.split("\n", 1)[0]
    who = memory.metadata.get("participants")
    names = ", ".join(str(p) for p in who) if isinstance(who, list) else ""
    return f"{title} ({names})" if names else str(title)


def expand(
    backend: StorageBackend,
    scope: Scope,
    ranked: Sequence[int],
    by_id: Mapping[int, Memory],
    scores: Mapping[int, float],
    cands: Mapping[int, Candidate],
    limit: int,
    per_episode: int = TURNS_PER_EPISODE,
) -> list[Hit]:
    """The top ``limit`` of ``ranked`` as hits, each episode expanded (module docstring).
    ``scores`` are the search's scores of every candidate, ``cands`` the candidates.
    An episode whose found turns are all shown above it already adds nothing and is left
    out; one whose session has no turn among the candidates is shown with its gist."""
    if per_episode < 1 or not any(by_id[mid].kind == "episode" for mid in ranked[:limit]):
        return [legs.hit(by_id[mid], scores[mid]) for mid in ranked[:limit]]
    by_conv: dict[str | None, list[int]] = {}
    for mid, c in cands.items():
        if c.kind == "message" and scores.get(mid, 0.0) > 0:
            by_conv.setdefault(c.conversation, []).append(mid)
    shown: set[int] = set()
    plan: list[tuple[int, list[int]]] = []
    for mid in ranked:
        if len(plan) == limit:
            break
        memory = by_id[mid]
        if mid in shown:
            continue
        if memory.kind != "episode":
            plan.append((mid, []))
            shown.add(mid)
            continue
        start = str(memory.metadata.get("start") or memory.created_at)
        end = str(memory.metadata.get("end") or start)
        inside = [
            t
            for t in by_conv.get(memory.conversation, [])
            if t not in shown and start <= cands[t].created_at <= end
        ]
        best = sorted(inside, key=lambda t: (-scores[t], t))[:per_episode]
        if best or not _any_inside(by_conv.get(memory.conversation, []), cands, start, end):
            plan.append((mid, best))  # no turn found at all (kinds=episode): its gist alone
            shown.update(best)
    turns = legs.hits(backend, scope, sorted({t for _, best in plan for t in best}))
    out: list[Hit] = []
    for mid, best in plan:
        memory = by_id[mid]
        hit = legs.hit(memory, scores[mid])
        if memory.kind == "episode" and best:
            held = sorted(
                (turns[t] for t in best if t in turns), key=lambda t: (t.created_at, t.id)
            )
            hit = replace(
                hit,
                content="\n".join([heading(memory), *(turn_line(t) for t in held)]),
                metadata={
                    **memory.metadata,
                    "turns": [t.id for t in held],
                    "source_external_ids": [t.external_id for t in held if t.external_id],
                },
            )
        out.append(hit)
    return out
