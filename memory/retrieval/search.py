"""Hybrid retrieval: BM25 per query term, vector similarity, then structure.

The query is parsed first (:mod:`memory.retrieval.query`): its topic words, the date it
names, the kind of answer it asks for. Query words that name a speaker in
scope become a speaker boost instead of a keyword: in a chat, "Priya" is
who speaks far more often than what is said, and matching the name in the text
finds the other person addressing her. Each remaining term is one FTS5 query
(BM25 is a sum over terms, so per-term scores add up to the usual score while
letting a name count only for memories nobody speaks, such as facts).

Every candidate is scored against the query vector exactly (cosine over
float32). The vectors also bring candidates of their own when the words found
too little, or when the embedder knows meaning (the static or a provider model)
and the scan is cheap: exactly over the rows when a filter narrows them (a
conversation, a time range) or the store is small, otherwise by a bit-quantised
KNN over ``memories_vec`` re-scored exactly, up to ``ranking.KNN_ROWS`` vectors.

Query expansion: each topic word also looks up its nearest words in the
static embedder's table ("exercise": workout; "pets": animals, dogs, cats),
skipping those with the same stem, which the index already matches; their BM25
counts at a fifth of the weight times the similarity. Expansion lifts memories
worded unlike the question without letting a near word outrank the word asked.

The best candidates' neighbouring turns are fetched in one batch, and
all are scored by :mod:`memory.retrieval.ranking` (neighbour and session shares;
speaker, time, answer-kind, importance and recency boosts).

Every leg is a call of the storage seam (:mod:`memory.retrieval.legs`); this
module fuses what they bring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from memory import timeutil
from memory.errors import UsageError
from memory.models.static_embed import neighbours
from memory.records import Hit
from memory.retrieval import episodes, legs
from memory.retrieval.filters import WHERE_HELP, Filters, make_filters, parse_where
from memory.retrieval.legs import EXACT_VECTOR_LIMIT
from memory.retrieval.query import ParsedQuery, answer_pattern, parse_query
from memory.retrieval.ranking import (
    Candidate,
    Ranking,
    answer_boosted,
    base_scores,
    boosted,
    structural,
    used_boosted,
)
from memory.text import stem

if TYPE_CHECKING:
    from memory.store import MemoryStore

__all__ = [
    "EXACT_VECTOR_LIMIT",
    "WHERE_HELP",
    "Filters",
    "Ranking",
    "find",
    "make_filters",
    "parse_where",
    "search",
]

# Per-term candidates: every match when a filter narrows the scope (a
# conversation is small), the best ones otherwise (at least this many).
NARROW_TERM_CAP = 2_000
BROAD_TERM_CAP = 50
# Messages whose neighbours are fetched: the best candidates by base score.
STRUCTURE_ANCHORS = 50
# Candidates read whole and re-ranked by the shape of the answer asked for.
RERANKED = 50


def search(
    store: MemoryStore,
    query: str,
    *,
    limit: int = 10,
    filters: Filters | None = None,
    ranking: Ranking | None = None,
) -> list[Hit]:
    """Hybrid search within the store's readable profiles."""
    if limit < 1:
        raise UsageError(f"Invalid limit {limit}: use a whole number of at least 1.")
    filters = filters or Filters()
    if filters.now is None:  # one "now" for every leg of this search
        filters = replace(filters, now=timeutil.now_iso())
    ranking = ranking or Ranking(half_life_days=store.half_life_days)
    if not query.strip():
        return []
    parsed = parse_query(query)
    backend, scope = store.backend, store.scope
    asked = legs.speakers(backend, scope, parsed.terms, filters)
    share = ranking.vector_share(store.embedder.name)
    cands = _gather(store, parsed, asked, filters, limit, ranking, share)
    if (
        "episode" not in filters.kinds
        and any(c.kind == "episode" for c in cands.values())
        and not episodes.asks_about_episodes(query)
    ):
        cands = {mid: c for mid, c in cands.items() if c.kind != "episode"}
    if not cands:
        return []
    base = base_scores(cands, ranking, share)
    anchors = sorted(
        (mid for mid, c in cands.items() if c.kind == "message" and base[mid] > 0),
        key=lambda mid: -base[mid],
    )[: max(limit * 5, STRUCTURE_ANCHORS)]
    near, found = legs.neighbours(
        backend, scope, {mid: cands[mid] for mid in anchors}, ranking.neighbour_window, filters
    )
    for mid in {i for pairs in near.values() for i, _ in pairs}:
        if mid not in cands:
            cands[mid] = found[mid]
            base[mid] = 0.0
    scores = boosted(
        cands,
        structural(cands, base, near, ranking),
        ranking,
        asked=frozenset(asked),
        when=parsed.when,
        now=timeutil.now(),
    )
    if ranking.episode_lift:
        scores = episodes.lift(backend, scope, scores, cands)
    return _best(store, scores, parsed, ranking, limit, cands)


def find(
    store: MemoryStore,
    query: str,
    *,
    limit: int = 10,
    kinds: str | Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    conversation: str | None = None,
    include_inactive: bool = False,
    where: Sequence[str | tuple[str, str, str]] | None = None,
) -> list[Hit]:
    """:func:`search` with the filters a user names (what ``mem search`` and
    ``Memory.search`` take); ``where`` filters on metadata: ``path~=docs/``,
    ``heading=Install``, ``("path", "!=", "x")``. An unknown conversation is an error."""
    filters = make_filters(
        kinds=kinds if kinds is None or isinstance(kinds, str) else tuple(kinds),
        since=since,
        until=until,
        conversation=conversation,
        include_inactive=include_inactive,
        where=where,
    )
    if conversation:
        store.require_conversation(conversation)
    return search(store, query, limit=limit, filters=filters)


def _gather(
    store: MemoryStore,
    parsed: ParsedQuery,
    asked: set[str],
    filters: Filters,
    limit: int,
    ranking: Ranking,
    share: float,
) -> dict[int, Candidate]:
    """Candidates from the keyword and vector legs, with their evidence."""
    backend, scope = store.backend, store.scope
    scoped = filters.narrow or bool(filters.kinds)
    cap = NARROW_TERM_CAP if scoped else max(limit * 5, BROAD_TERM_CAP)
    per_term = legs.keyword(backend, scope, parsed.terms, filters, scoped, cap)
    # The asked person's own turns are (weak) evidence even when no other
    # word matches ("Where does Cleo work?" when Cleo says "my bakery").
    per_speaker = legs.keyword(backend, scope, asked, filters, scoped, cap, column="speaker")
    expanded = _expansions(parsed, asked, ranking)
    per_near = legs.keyword(backend, scope, expanded, filters, scoped, cap)
    matched: set[int] = set().union(*per_term.values(), *per_speaker.values(), *per_near.values())
    qvec = store.embedder.embed([parsed.text])[0] if share > 0 else []
    sims: dict[int, float] = {}
    if any(qvec):
        # The backend's bound on the scope's rows (no count); a narrowing filter
        # makes the vector search an exact scan of the few rows it leaves.
        rows = 0 if filters.narrow else backend.row_bound(scope)
        if ranking.wants_nearest(store.embedder.name, len(matched), limit, scan_rows=rows):
            sims = legs.nearest(backend, scope, qvec, filters, max(limit * 3, 30), rows)
    cands = legs.candidates(backend, scope, matched.union(sims), filters)
    if any(qvec) and cands:
        sims.update(backend.similarities(scope, qvec, [mid for mid in cands if mid not in sims]))
    for term, scores in per_term.items():
        # A speaker's name counts in the text only of memories nobody speaks.
        name = term in asked
        for mid, score in scores.items():
            c = cands.get(mid)
            if c is not None and not (name and c.speaker):
                c.lexical += score
    for word, scores in per_near.items():
        for mid, score in scores.items():
            if mid in cands:
                cands[mid].lexical += expanded[word] * score
    for scores in per_speaker.values():
        for mid, score in scores.items():
            if mid in cands:
                cands[mid].lexical += ranking.speaker_weight * score
    for mid, sim in sims.items():
        if mid in cands:
            cands[mid].vector = sim
    return cands


def _expansions(parsed: ParsedQuery, asked: set[str], ranking: Ranking) -> dict[str, float]:
    """Words near the query's topic words, with the weight their BM25 counts at (see
    the module docstring). Names of people asked about are not expanded."""
    if ranking.expansion_weight <= 0:
        return {}
    out: dict[str, float] = {}
    for term in parsed.terms:
        if term in asked:
            continue
        near = neighbours(term, ranking.expansion_neighbours, ranking.expansion_similarity)
        for word, similarity in near:
            if any(_same_root(word, t) for t in parsed.terms):
                continue
            out[word] = max(out.get(word, 0.0), ranking.expansion_weight * similarity)
    return out


def _same_root(a: str, b: str) -> bool:
    """Whether two words are forms of one word ("exercise", "exercising"): the FTS
    index's Porter stemmer already matches one for the other."""
    if stem(a) == stem(b):
        return True
    short, long = sorted((a, b), key=len)
    root = short[:-1] if short.endswith("e") else short
    return len(root) >= 3 and long.startswith(root)


def _best(
    store: MemoryStore,
    scores: Mapping[int, float],
    parsed: ParsedQuery,
    ranking: Ranking,
    limit: int,
    cands: Mapping[int, Candidate],
) -> list[Hit]:
    """Read the best candidates whole, re-rank them by the kind of answer the
    query asks for, and return the top ``limit`` as hits. A memory with no
    evidence at all (score 0) is no hit."""
    top = sorted((m for m in scores if scores[m] > 0), key=lambda m: (-scores[m], -m))
    top = top[: max(limit * 5, RERANKED)]
    by_id = legs.hits(store.backend, store.scope, top)
    final = {mid: scores[mid] for mid in top if mid in by_id}
    if ranking.use_weight and any(m.use_count for m in by_id.values()):
        uses = {mid: (m.use_count, m.last_used_at) for mid, m in by_id.items()}
        final = used_boosted(final, uses, ranking, timeutil.now())
    if parsed.answer and ranking.answer_boost:
        texts = {mid: m.content for mid, m in by_id.items()}
        final = answer_boosted(final, texts, answer_pattern(parsed.answer), ranking.answer_boost)
    ordered = sorted(final, key=lambda m: (-final[m], -m))
    if ranking.episode_turns > 0 and any(by_id[m].kind == "episode" for m in ordered[:limit]):
        merged = {**scores, **final}
        return episodes.expand(
            store.backend, store.scope, ordered, by_id, merged, cands, limit, ranking.episode_turns
        )
    return [legs.hit(by_id[mid], final[mid]) for mid in ordered[:limit]]
