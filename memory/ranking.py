"""Scoring search candidates: lexical and vector evidence, then structure.

Memories found by words alone miss much of what a person asks about. In a
conversation the answer often sits one or two turns after the turn that
matches ("What genre is it?" / "A mix of drama and romance!"), and the session
that talks most about a topic is where its details are. So a candidate's score
has three parts, each a general rule, not a per-question tweak:

* base: BM25 (summed over query terms, normalised to the best candidate) plus
  a smaller share of vector similarity;
* neighbours: a message gets a share of the best base score among the turns
  up to ``neighbour_window`` away in its session, decaying with distance;
* session: every message of a session (a conversation's day) gets a share of
  that session's best base score.

The sum is then multiplied by boosts: the speaker is the one person the query
asks about; the memory was made in the period the query names; importance and
recency (exponential decay with a half-life). Facts and other memories outside
a conversation are their own session, so they compete on the same scale.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from . import timeutil
from .query import TimeWindow
from .text import words


@dataclass
class Ranking:
    """Weights of the final score; general rules, not tuned per question.

    ``vector_weight`` None picks a default by embedder: the offline hashing
    embedder mostly repeats what BM25 knows, a real model adds meaning.
    """

    keyword_weight: float = 1.0
    vector_weight: float | None = None
    neighbour_weight: float = 0.6
    neighbour_window: int = 2
    neighbour_decay: float = 0.75
    session_weight: float = 0.3
    speaker_boost: float = 1.0
    time_boost: float = 1.0
    importance_weight: float = 0.3
    recency_weight: float = 0.2
    half_life_days: float = 30.0

    def vector_share(self, embedder_name: str) -> float:
        if self.vector_weight is not None:
            return self.vector_weight
        return 0.1 if embedder_name.startswith("hash-") else 0.6


@dataclass
class Candidate:
    """What scoring needs to know about one memory."""

    id: int
    kind: str
    conversation: str | None
    created_at: str
    speaker: str | None
    importance: float
    lexical: float = 0.0
    vector: float = 0.0
    _speaker_words: frozenset[str] | None = field(default=None, repr=False)

    @property
    def session(self) -> tuple[str, str] | None:
        """Messages of one conversation on one (UTC) day form a session."""
        if self.kind != "message" or not self.conversation:
            return None
        return (self.conversation, self.created_at[:10])

    def spoken_by(self, name: str) -> bool:
        if self._speaker_words is None:
            self._speaker_words = frozenset(words(self.speaker or ""))
        return name in self._speaker_words


def base_scores(
    cands: Mapping[int, Candidate], ranking: Ranking, vector_share: float
) -> dict[int, float]:
    """Lexical and vector evidence, each normalised to its best candidate."""
    top_lex = max((c.lexical for c in cands.values()), default=0.0)
    top_vec = max((c.vector for c in cands.values()), default=0.0)
    base: dict[int, float] = {}
    for mid, c in cands.items():
        score = 0.0
        if top_lex > 0:
            score += ranking.keyword_weight * c.lexical / top_lex
        if top_vec > 0 and c.vector > 0:
            score += vector_share * c.vector / top_vec
        base[mid] = score
    return base


def structural(
    cands: Mapping[int, Candidate],
    base: Mapping[int, float],
    neighbours: Mapping[int, Iterable[tuple[int, int]]],
    ranking: Ranking,
) -> dict[int, float]:
    """Base plus the neighbour and session shares (see the module docstring).

    ``neighbours`` maps a message to ``(other id, distance in turns)`` pairs of
    its session; every id named there must be in ``cands``.
    """
    spread: dict[int, float] = {}
    for anchor, near in neighbours.items():
        score = base.get(anchor, 0.0)
        if score <= 0:
            continue
        for other, distance in near:
            share = score * ranking.neighbour_decay ** (distance - 1)
            if share > spread.get(other, 0.0):
                spread[other] = share
    best: dict[object, float] = {}
    for mid, c in cands.items():
        key: object = c.session or mid
        if base.get(mid, 0.0) > best.get(key, 0.0):
            best[key] = base[mid]
    top_session = max(best.values(), default=0.0) or 1.0
    out: dict[int, float] = {}
    for mid, c in cands.items():
        session = best.get(c.session or mid, 0.0) / top_session
        out[mid] = (
            base.get(mid, 0.0)
            + ranking.neighbour_weight * spread.get(mid, 0.0)
            + ranking.session_weight * session
        )
    return out


def boosted(
    cands: Mapping[int, Candidate],
    scores: Mapping[int, float],
    ranking: Ranking,
    *,
    asked: frozenset[str] = frozenset(),
    when: TimeWindow | None = None,
    now: datetime | None = None,
) -> dict[int, float]:
    """Multiply in the speaker, time, importance and recency boosts.

    The speaker boost needs exactly one person asked about: a question naming
    both people of a chat says nothing about whose turns hold the answer.
    """
    now = now or timeutil.now()
    person = next(iter(asked)) if len(asked) == 1 else None
    half_life = max(ranking.half_life_days, 1e-6)
    out: dict[int, float] = {}
    for mid, score in scores.items():
        c = cands[mid]
        made = timeutil.from_iso(c.created_at)
        factor = 1.0
        if person is not None and c.spoken_by(person):
            factor *= 1.0 + ranking.speaker_boost
        if when is not None and when.covers(made):
            factor *= 1.0 + ranking.time_boost
        age_days = max(0.0, (now - made).total_seconds() / 86400)
        recency = math.pow(0.5, age_days / half_life)
        factor *= (
            1.0
            + ranking.importance_weight * (c.importance - 0.5)
            + ranking.recency_weight * recency
        )
        out[mid] = score * factor
    return out
