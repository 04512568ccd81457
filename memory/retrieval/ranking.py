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

Use: a memory that turns put in their prompts (``use_count``, ``last_used_at``)
is lifted by up to ``use_weight``, growing with the log of its uses and
fading with the time since its last use (the same half-life), so one used in
ten turns outranks an equal one never used, and an unused memory falls back
to its importance and age. Tending (memory.lifecycle.tending) turns lasting
use into importance; nothing here deletes anything.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from memory import timeutil
from memory.retrieval.query import TimeWindow
from memory.text import words

# Above this many vectors to scan, a whole-store search does not run the vector KNN
# when the words already found enough candidates (see Ranking.wants_nearest).
KNN_ROWS = 50_000


@dataclass
class Ranking:
    """Weights of the final score; general rules, not tuned per question.

    * ``keyword_weight``, ``vector_weight``: the two parts of the base score.
      ``vector_weight`` None picks a default by embedder: the offline hashing
      embedder mostly repeats what BM25 knows, a real model adds meaning.
    * ``neighbour_weight``, ``neighbour_window``, ``neighbour_decay``: the
      share of a turn's base score given to turns up to ``window`` away.
    * ``session_weight``: the share of its session's best base score.
    * ``speaker_boost``: factor 1 + boost for turns of the person asked about;
      ``speaker_weight``: how much their being the speaker counts as evidence.
    * ``time_boost``: factor 1 + boost inside the period the query names.
    * ``answer_boost``: factor 1 + boost for text shaped like the answer.
    * ``expansion_weight``, ``expansion_neighbours``, ``expansion_similarity``:
      each topic word of the query also looks up its nearest words in the
      offline embedder's table (up to that many, at least that similar), their
      BM25 counting at weight x similarity; 0 turns it off.
    * ``importance_weight``, ``recency_weight``, ``half_life_days``: nudges.
    * ``use_weight``, ``use_saturation``: the lift of a used memory, full at
      that many uses, halving with each half-life since its last use.
    * ``nearest``: None decides per query whether the vectors bring
      candidates of their own (see :meth:`wants_nearest`).
    * ``episode_turns``: an episode hit opens into this many of its best turns
      (:mod:`memory.retrieval.episodes`); 0 keeps episodes closed. ``episode_lift``:
      an episode scores at least as well as its best turn, so a question about a
      conversation gets the event before its turns (episodes enter a search only
      for such questions: ``episodes.asks_about_episodes``).

    The values were chosen on five LoCoMo conversations and checked by
    leaving each conversation out in turn; each is a round number on a flat
    optimum, not a fit.
    """

    keyword_weight: float = 1.0
    vector_weight: float | None = None
    neighbour_weight: float = 0.6
    neighbour_window: int = 2
    neighbour_decay: float = 0.75
    session_weight: float = 0.5
    speaker_boost: float = 1.0
    speaker_weight: float = 0.1
    time_boost: float = 1.0
    answer_boost: float = 0.4
    expansion_weight: float = 0.2
    expansion_neighbours: int = 4
    expansion_similarity: float = 0.5
    importance_weight: float = 0.3
    recency_weight: float = 0.2
    half_life_days: float = 30.0
    use_weight: float = 0.2
    use_saturation: int = 20
    nearest: bool | None = None
    episode_turns: int = 3
    episode_lift: bool = True

    def vector_share(self, embedder_name: str) -> float:
        if self.vector_weight is not None:
            return self.vector_weight
        return 0.1 if _lexical(embedder_name) else 0.6

    def wants_nearest(
        self, embedder_name: str, keyword_hits: int, limit: int, *, scan_rows: int = 0
    ) -> bool:
        """Whether to search the vectors for candidates of their own, not only
        score the keyword candidates. Always when the words found too little
        (a misspelt query, or one worded unlike the memories). Otherwise only
        for an embedder that knows meaning (the hashing one only sees words and
        their spelling), and only while the scan is cheap: ``scan_rows`` is how
        many vectors the search would read (0 when a filter narrows them to
        few). The bit-quantised KNN reads every row, ~7 ms per 100k memories;
        past ``KNN_ROWS`` the vectors re-score the keyword candidates (and those
        of the query's expanded words) only, which keeps a search of 100k
        memories at about half its 15 ms budget."""
        if self.nearest is not None:
            return self.nearest
        if keyword_hits < limit:
            return True
        return not _lexical(embedder_name) and scan_rows <= KNN_ROWS


def _lexical(embedder_name: str) -> bool:
    return embedder_name.startswith("hash-")


class Candidate:
    """What scoring needs to know about one memory (a plain slotted class:
    searches build hundreds of these)."""

    __slots__ = (
        "id",
        "kind",
        "conversation",
        "created_at",
        "speaker",
        "importance",
        "lexical",
        "vector",
        "session",
    )

    def __init__(
        self,
        id: int,
        kind: str,
        conversation: str | None,
        created_at: str,
        speaker: str | None,
        importance: float,
    ) -> None:
        self.id = id
        self.kind = kind
        self.conversation = conversation
        self.created_at = created_at
        self.speaker = speaker
        self.importance = importance
        self.lexical = 0.0
        self.vector: float | None = None
        # Messages of one conversation on one (UTC) day form a session.
        self.session = (
            (conversation, created_at[:10]) if kind == "message" and conversation else None
        )


def base_scores(
    cands: Mapping[int, Candidate], ranking: Ranking, vector_share: float
) -> dict[int, float]:
    """Lexical and vector evidence, each normalised to its best candidate."""
    top_lex = max((c.lexical for c in cands.values()), default=0.0)
    top_vec = max((c.vector or 0.0 for c in cands.values()), default=0.0)
    base: dict[int, float] = {}
    for mid, c in cands.items():
        score = 0.0
        if top_lex > 0:
            score += ranking.keyword_weight * c.lexical / top_lex
        if top_vec > 0 and c.vector is not None and c.vector > 0:
            score += vector_share * c.vector / top_vec
        if c.vector is not None:
            # A vanishing share of any similarity, even none: memories that
            # match nothing still come back, nearest first, after all others.
            score += 1e-6 * (1.0 + c.vector)
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

    @functools.cache
    def when_factor(created_at: str) -> tuple[float, float]:
        # Messages of a session share a timestamp: parse each one once.
        made = timeutil.from_iso(created_at)
        factor = 1.0
        if when is not None and when.covers(made):
            factor += ranking.time_boost
        age_days = max(0.0, (now - made).total_seconds() / 86400)
        return factor, ranking.recency_weight * math.pow(0.5, age_days / half_life)

    @functools.cache
    def speaks(speaker: str | None) -> bool:
        return person is not None and person in words(speaker or "")

    out: dict[int, float] = {}
    for mid, score in scores.items():
        c = cands[mid]
        factor, recency = when_factor(c.created_at)
        if speaks(c.speaker):
            factor *= 1.0 + ranking.speaker_boost
        factor *= 1.0 + ranking.importance_weight * (c.importance - 0.5) + recency
        out[mid] = score * factor
    return out


def answer_boosted(
    scores: Mapping[int, float], texts: Mapping[int, str], pattern: re.Pattern[str], boost: float
) -> dict[int, float]:
    """Lift memories whose text has the shape of the answer asked for (a time
    for "when", a number for "how many"...). Applied to the best candidates
    only, whose text is read anyway to build the hits."""
    return {
        mid: score * (1.0 + boost) if pattern.search(texts.get(mid, "")) else score
        for mid, score in scores.items()
    }


def use_lift(uses: int, last_used_at: str | None, ranking: Ranking, now: datetime) -> float:
    """The factor of a memory's use (1.0: never used); see the module docstring."""
    if uses <= 0 or not last_used_at or ranking.use_weight <= 0:
        return 1.0
    saturation = max(ranking.use_saturation, 1)
    amount = min(1.0, math.log1p(uses) / math.log1p(saturation))
    idle_days = max(0.0, (now - timeutil.from_iso(last_used_at)).total_seconds() / 86400)
    fading = math.pow(0.5, idle_days / max(ranking.half_life_days, 1e-6))
    return 1.0 + ranking.use_weight * amount * fading


def used_boosted(
    scores: Mapping[int, float],
    uses: Mapping[int, tuple[int, str | None]],
    ranking: Ranking,
    now: datetime,
) -> dict[int, float]:
    """Lift the best candidates by their use (``uses``: id -> (use_count,
    last_used_at)), read with their text, so scoring reads no more rows."""
    out: dict[int, float] = {}
    for mid, score in scores.items():
        count, last = uses.get(mid, (0, None))
        out[mid] = score * use_lift(count, last, ranking, now)
    return out
