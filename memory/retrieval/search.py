"""Hybrid retrieval: FTS5 BM25 per query term, vector similarity, then structure.

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

The best candidates' neighbouring turns are fetched in one batch query, and
all are scored by :mod:`memory.retrieval.ranking` (neighbour and session shares;
speaker, time, answer-kind, importance and recency boosts).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from memory import timeutil
from memory.errors import UsageError
from memory.models.embed import pack
from memory.models.static_embed import neighbours
from memory.records import KINDS, Hit
from memory.retrieval.query import ParsedQuery, answer_pattern, parse_query
from memory.retrieval.ranking import (
    Candidate,
    Ranking,
    answer_boosted,
    base_scores,
    boosted,
    structural,
)
from memory.storage.sqlite import keyword_stats
from memory.text import stem, words

if TYPE_CHECKING:
    from memory.store import MemoryStore

__all__ = ["Filters", "Ranking", "make_filters", "parse_where", "search"]

# Stores up to this many rows are searched by exact vector scan, not KNN.
EXACT_VECTOR_LIMIT = 2_000
# Per-term candidates: every match when a filter narrows the scope (a
# conversation is small), the best ones otherwise (at least this many).
NARROW_TERM_CAP = 2_000
BROAD_TERM_CAP = 50
# Without a narrowing filter, a term is scored over at most its newest matches.
TERM_SCAN = 1_000
# Up to this many rows of other profiles, their matches are left out one by
# one rather than each match joined to its profile (see _keyword_excluding).
OTHERS_BY_ROW = 20
# Messages whose neighbours are fetched: the best candidates by base score.
STRUCTURE_ANCHORS = 50
# Candidates read whole and re-ranked by the shape of the answer asked for.
RERANKED = 50


@dataclass
class Filters:
    kinds: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    conversation: str | None = None
    include_inactive: bool = False
    # Metadata filters (key, op, value): op "=" equals, "~=" contains, "!=" differs.
    where: tuple[tuple[str, str, str], ...] = ()
    # What the caller already has in hand: a prompt holds its instructions,
    # profile facts and recent turns already, so searching them again would
    # only crowd out the memories it lacks.
    exclude_kinds: tuple[str, ...] = ()
    exclude_ids: tuple[int, ...] = ()
    exclude_messages: tuple[int, ...] = ()

    def sql(self, store: MemoryStore, alias: str = "m") -> tuple[str, list[Any]]:
        profiles = store.readable_profiles()
        clauses = [f"{alias}.profile IN ({','.join('?' * len(profiles))})"]
        params: list[Any] = list(profiles)
        if self.kinds:
            clauses.append(f"{alias}.kind IN ({','.join('?' * len(self.kinds))})")
            params += list(self.kinds)
        if self.since:
            clauses.append(f"{alias}.created_at >= ?")
            params.append(self.since)
        if self.until:
            clauses.append(f"{alias}.created_at <= ?")
            params.append(self.until)
        if self.conversation:
            clauses.append(f"{alias}.conversation_id = ?")
            params.append(self.conversation)
        if not self.include_inactive:
            clauses.append(
                f"{alias}.superseded_by IS NULL AND {alias}.valid_until IS NULL "
                f"AND ({alias}.expires_at IS NULL OR {alias}.expires_at > ?)"
            )
            params.append(timeutil.now_iso())
        for key, op, value in self.where:
            field = f"CAST(json_extract({alias}.metadata, '$.' || ?) AS TEXT)"
            if op == "=":
                clauses.append(f"{field} = ?")
            elif op == "~=":
                clauses.append(f"instr({field}, ?) > 0")
            else:
                clauses.append(f"coalesce({field} != ?, 1)")
            params += [_where_key(key), value]
        if self.exclude_kinds:
            clauses.append(f"{alias}.kind NOT IN ({','.join('?' * len(self.exclude_kinds))})")
            params += list(self.exclude_kinds)
        if self.exclude_ids:
            clauses.append(f"{alias}.id NOT IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(list(self.exclude_ids)))
        if self.exclude_messages:
            clauses.append(
                f"coalesce({alias}.kind != 'message' OR {alias}.source_message_id "
                "NOT IN (SELECT value FROM json_each(?)), 1)"
            )
            params.append(json.dumps(list(self.exclude_messages)))
        return " AND ".join(clauses), params

    @property
    def narrow(self) -> bool:
        return bool(self.conversation or self.since or self.until or self.where)


WHERE_HELP = "use KEY=VALUE, KEY~=VALUE (contains) or KEY!=VALUE, e.g. --where path~=docs/"


def _where_key(key: str) -> str:
    if not key.isidentifier():
        raise UsageError(f"Invalid metadata key {key!r} in --where: {WHERE_HELP}.")
    return key


def parse_where(term: str | tuple[str, str, str]) -> tuple[str, str, str]:
    """``KEY=VALUE``, ``KEY~=VALUE`` or ``KEY!=VALUE`` as a (key, op, value) filter."""
    if isinstance(term, tuple):
        key, op, value = term
    else:
        at = term.find("=")
        if at < 1:
            raise UsageError(f"Invalid --where {term!r}: {WHERE_HELP}.")
        op = term[at - 1 : at + 1] if term[at - 1] in "~!" else "="
        key, value = term[: at + 1 - len(op)].strip(), term[at + 1 :]
    if op not in ("=", "~=", "!="):
        raise UsageError(f"Invalid --where operator {op!r}: {WHERE_HELP}.")
    return _where_key(key), op, value


def make_filters(
    *,
    kinds: str | tuple[str, ...] | list[str] | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    conversation: str | None = None,
    include_inactive: bool = False,
    where: Sequence[str | tuple[str, str, str]] | None = None,
) -> Filters:
    """Validate user-facing filter values into a :class:`Filters`."""
    if isinstance(kinds, str):
        kinds = (kinds,)
    kinds = tuple(kinds or ())
    for kind in kinds:
        if kind not in KINDS:
            raise UsageError(f"Unknown kind {kind!r}: use one of {', '.join(KINDS)}.")

    def when(value: str | datetime | None) -> str | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return timeutil.to_iso(value)
        return timeutil.to_iso(timeutil.parse_when(value))

    terms = tuple(parse_where(t) for t in (where or ()))
    return Filters(kinds, when(since), when(until), conversation, include_inactive, where=terms)


def _fts_phrase(column: str, term: str) -> str:
    """A column-restricted FTS5 phrase; quoting makes user text a literal."""
    return f'{column} : "' + term.replace('"', '""') + '"'


def _speakers(store: MemoryStore, terms: Sequence[str], where: str, params: list[Any]) -> set[str]:
    """Query terms that name a speaker of a memory within the filters."""
    found: set[str] = set()
    for term in terms:
        rows = store.conn.execute(
            f"SELECT m.speaker FROM memories_fts f CROSS JOIN memories m ON m.id = f.rowid "
            f"WHERE memories_fts MATCH ? AND {where} LIMIT 5",
            [_fts_phrase("speaker", term), *params],
        ).fetchall()
        # The index stems names ("nicole" ~ "nicol"); keep only real name matches.
        if any(term in words(r[0] or "") for r in rows):
            found.add(term)
    return found


def _keyword(
    store: MemoryStore,
    terms: Iterable[str],
    scoped: bool,
    where: str,
    params: list[Any],
    cap: int,
    st: keyword_stats.Stats,
    column: str = "content",
) -> dict[str, dict[int, float]]:
    """BM25 of each term over one FTS column (the memory's text, or its
    speaker): term -> {memory id: score}, the best ``cap`` per term.

    ``scoped`` (a filter that leaves few rows) applies the filters inside the
    query. Otherwise the cost of a term is bounded: FTS5 scores every row it
    returns, so a common term is scored over its ``TERM_SCAN`` newest matches
    only (a common term weighs little in BM25 anyway), and the filters are
    applied to the candidates afterwards. When FTS5's statistics are not the
    scope's own (``st`` is not whole), see :func:`_keyword_in_scope`.
    """
    out: dict[str, dict[int, float]] = {}
    for term in terms:
        if not st.whole:
            out[term] = _keyword_in_scope(
                store, _fts_phrase(column, term), scoped, where, params, cap, st
            )
            continue
        if scoped:
            rows = store.conn.execute(
                f"SELECT m.id, -bm25(memories_fts) AS s FROM memories_fts f "
                f"CROSS JOIN memories m ON m.id = f.rowid WHERE memories_fts MATCH ? "
                f"AND {where} ORDER BY s DESC LIMIT ?",
                [_fts_phrase(column, term), *params, cap],
            ).fetchall()
        else:
            rows = store.conn.execute(
                "SELECT rowid, -bm25(memories_fts) FROM memories_fts WHERE memories_fts MATCH ? "
                "ORDER BY rowid DESC LIMIT ?",
                [_fts_phrase(column, term), TERM_SCAN],
            ).fetchall()
            rows = heapq.nlargest(cap, rows, key=lambda r: float(r[1]))
        out[term] = {int(r[0]): float(r[1]) for r in rows}
    return out


def _keyword_in_scope(
    store: MemoryStore,
    phrase: str,
    scoped: bool,
    where: str,
    params: list[Any],
    cap: int,
    st: keyword_stats.Stats,
) -> dict[int, float]:
    """:func:`_keyword` when the index's statistics are not the scope's own
    (other profiles have rows, or deleted rows still count in FTS5's totals):
    the scope applies inside the query (the ``TERM_SCAN`` newest matches are
    this scope's, however many another profile has) and the scores use the
    scope's statistics (:mod:`memory.storage.sqlite.keyword_stats`), so nothing outside the
    scope hides, lifts or reveals anything."""
    if not scoped and st.others <= OTHERS_BY_ROW:
        return _keyword_excluding(store, phrase, cap, st)
    rows = store.conn.execute(
        "SELECT f.rowid, -bm25(memories_fts), d.sz FROM memories_fts f "
        "CROSS JOIN memories m ON m.id = f.rowid "
        "CROSS JOIN memories_fts_docsize d ON d.id = f.rowid "
        f"WHERE memories_fts MATCH ? AND {where if scoped else _scope_sql(st)} "
        "ORDER BY f.rowid DESC LIMIT ?",
        [phrase, *(params if scoped else st.profiles), -1 if scoped else TERM_SCAN],
    ).fetchall()
    every = not scoped and len(rows) < TERM_SCAN  # then the rows are all the scope's matches
    scores = keyword_stats.rescore(store.conn, phrase, rows, st, len(rows) if every else None)
    return dict(heapq.nlargest(cap, scores.items(), key=lambda kv: kv[1]))


def _scope_sql(st: keyword_stats.Stats) -> str:
    return f"m.profile IN ({','.join('?' * len(st.profiles))})"


def _keyword_excluding(
    store: MemoryStore, phrase: str, cap: int, st: keyword_stats.Stats
) -> dict[int, float]:
    """:func:`_keyword_in_scope` when the other profiles hold few rows (or none,
    when only deleted rows make FTS5's totals differ): their matches are
    found row by row and left out, sparing a join per match."""
    excluded: set[int] = set()
    if st.other_profiles:
        marks = ",".join("?" * len(st.other_profiles))
        excluded = {
            int(r[0])
            for r in store.conn.execute(
                "SELECT m.id FROM memories m CROSS JOIN memories_fts f ON f.rowid = m.id "
                f"WHERE m.profile IN ({marks}) AND memories_fts MATCH ?",
                [*st.other_profiles, phrase],
            )
        }
    rows = store.conn.execute(
        "SELECT f.rowid, -bm25(memories_fts), d.sz FROM memories_fts f "
        "CROSS JOIN memories_fts_docsize d ON d.id = f.rowid "
        "WHERE memories_fts MATCH ? ORDER BY f.rowid DESC LIMIT ?",
        [phrase, TERM_SCAN + len(excluded)],
    ).fetchall()
    rows = [r for r in rows if r[0] not in excluded][:TERM_SCAN]
    scores = keyword_stats.rescore(store.conn, phrase, rows, st, other_hits=len(excluded))
    return dict(heapq.nlargest(cap, scores.items(), key=lambda kv: kv[1]))


def _nearest(
    store: MemoryStore,
    blob: bytes,
    filters: Filters,
    where: str,
    params: list[Any],
    n: int,
    scan_rows: int,
) -> dict[int, float]:
    """The ``n`` memories nearest the query vector: {memory id: similarity}.

    Exact (cosine over float32) when a filter narrows the rows or the store is
    small (``scan_rows``, the caller's :func:`_max_id`); otherwise a bit-quantised KNN
    over ``memories_vec`` (its cost grows with k, so k stays small) whose
    candidates are re-scored exactly.
    """
    exact = filters.narrow or scan_rows <= EXACT_VECTOR_LIMIT
    if exact:
        rows = store.conn.execute(
            f"SELECT m.id, vec_distance_cosine(v.vector, ?) AS d FROM memory_vectors v "
            f"JOIN memories m ON m.id = v.id WHERE {where} AND d IS NOT NULL "
            f"ORDER BY d LIMIT ?",
            [blob, *params, n],
        ).fetchall()
        return {int(r[0]): 1.0 - float(r[1]) for r in rows}
    cand = store.conn.execute(
        "SELECT id FROM memories_vec WHERE embedding MATCH vec_quantize_binary(vec_f32(?)) "
        "AND k = ?",
        [blob, n * 2],
    ).fetchall()
    return _similarities(store, blob, [int(r[0]) for r in cand])


def _max_id(store: MemoryStore) -> int:
    """The highest memory id: a bound on the row count that costs no scan."""
    return int(store.conn.execute("SELECT max(id) FROM memories").fetchone()[0] or 0)


def _similarities(store: MemoryStore, blob: bytes, ids: Iterable[int]) -> dict[int, float]:
    """Exact cosine similarity of the query vector to each of ``ids``."""
    rows = store.conn.execute(
        "SELECT v.id, vec_distance_cosine(v.vector, ?) FROM json_each(?) j "
        "CROSS JOIN memory_vectors v ON v.id = j.value",
        [blob, json.dumps(list(ids))],
    ).fetchall()
    return {int(r[0]): 1.0 - float(r[1]) for r in rows if r[1] is not None}


_HIT_COLUMNS = (
    "id, kind, content, created_at, conversation_id, source_message_id, external_id, profile, "
    "source, speaker, importance, confidence, superseded_by, metadata"
)


def _candidates(
    store: MemoryStore, ids: Iterable[int], where: str, params: list[Any]
) -> dict[int, Candidate]:
    """What scoring needs of the memories ``ids`` that pass the filters (not
    their text: only the final hits are read whole)."""
    rows = store.conn.execute(
        "SELECT m.id, m.kind, m.conversation_id, m.created_at, m.speaker, m.importance "
        f"FROM json_each(?) j CROSS JOIN memories m ON m.id = j.value WHERE {where}",
        [json.dumps(list(ids)), *params],
    ).fetchall()
    return {int(r[0]): Candidate(int(r[0]), r[1], r[2], r[3], r[4], float(r[5])) for r in rows}


def _neighbours(
    store: MemoryStore,
    anchors: Mapping[int, Candidate],
    window: int,
    where: str,
    params: list[Any],
) -> tuple[dict[int, list[tuple[int, int]]], dict[int, Candidate]]:
    """The messages up to ``window`` turns before and after each anchor
    message, in its session (same conversation, same day), that pass the
    filters. One query walks the conversation index from each anchor both
    ways (ids grow with time). Returns anchor -> [(id, distance)] and those
    messages as candidates."""
    if not anchors or window < 1:
        return {}, {}
    side = (
        "SELECT a.value, p.id FROM json_each(?1) a CROSS JOIN memories c ON c.id = a.value "
        "CROSS JOIN memories p ON p.id IN (SELECT q.id FROM memories q "
        "WHERE q.conversation_id = c.conversation_id AND q.kind = 'message' "
        "AND q.id {op} c.id ORDER BY q.id {order} LIMIT ?2)"
    )
    pairs = store.conn.execute(
        side.format(op="<", order="DESC") + " UNION ALL " + side.format(op=">", order="ASC"),
        [json.dumps(list(anchors)), window],
    ).fetchall()
    around: dict[int, list[int]] = {}
    for anchor, other in pairs:
        around.setdefault(int(anchor), []).append(int(other))
    found = _candidates(store, {i for ids in around.values() for i in ids}, where, params)
    near: dict[int, list[tuple[int, int]]] = {}
    for anchor, ids in around.items():
        session = anchors[anchor].session
        before = sorted((i for i in ids if i < anchor), reverse=True)
        after = sorted(i for i in ids if i > anchor)
        near[anchor] = [
            (i, distance)
            for run in (before, after)
            for distance, i in enumerate(run, start=1)
            if i in found and found[i].session == session
        ]
    return near, found


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
    ranking = ranking or Ranking(half_life_days=store.half_life_days)
    if not query.strip():
        return []
    parsed = parse_query(query)
    where, params = filters.sql(store)
    asked = _speakers(store, parsed.terms, where, params)
    share = ranking.vector_share(store.embedder.name)
    st = keyword_stats.stats(store.conn, store.readable_profiles())
    cands = _gather(store, parsed, asked, filters, where, params, limit, ranking, share, st)
    if not cands:
        return []
    base = base_scores(cands, ranking, share)
    anchors = sorted(
        (mid for mid, c in cands.items() if c.kind == "message" and base[mid] > 0),
        key=lambda mid: -base[mid],
    )[: max(limit * 5, STRUCTURE_ANCHORS)]
    near, found = _neighbours(
        store, {mid: cands[mid] for mid in anchors}, ranking.neighbour_window, where, params
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
    return _best(store, scores, parsed, ranking, limit)


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
    where: str,
    params: list[Any],
    limit: int,
    ranking: Ranking,
    share: float,
    st: keyword_stats.Stats,
) -> dict[int, Candidate]:
    """Candidates from the keyword and vector legs, with their evidence."""
    scoped = filters.narrow or bool(filters.kinds)
    cap = NARROW_TERM_CAP if scoped else max(limit * 5, BROAD_TERM_CAP)
    per_term = _keyword(store, parsed.terms, scoped, where, params, cap, st)
    # The asked person's own turns are (weak) evidence even when no other
    # word matches ("Where does Cleo work?" when Cleo says "my bakery").
    per_speaker = _keyword(store, asked, scoped, where, params, cap, st, column="speaker")
    expanded = _expansions(parsed, asked, ranking)
    per_near = _keyword(store, expanded, scoped, where, params, cap, st)
    matched: set[int] = set().union(*per_term.values(), *per_speaker.values(), *per_near.values())
    qvec = store.embedder.embed([parsed.text])[0] if share > 0 else []
    blob = pack(qvec) if any(qvec) else b""
    sims: dict[int, float] = {}
    if blob:
        # The highest id bounds the row count without counting rows; a narrowing
        # filter makes the vector search an exact scan of the few rows it leaves.
        # With other profiles in the file, the scope's own row count decides.
        rows = 0 if filters.narrow else _max_id(store) if st.whole else st.rows
        if ranking.wants_nearest(store.embedder.name, len(matched), limit, scan_rows=rows):
            sims = _nearest(store, blob, filters, where, params, max(limit * 3, 30), rows)
    cands = _candidates(store, matched.union(sims), where, params)
    if blob and cands:
        sims.update(_similarities(store, blob, [mid for mid in cands if mid not in sims]))
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
) -> list[Hit]:
    """Read the best candidates whole, re-rank them by the kind of answer the
    query asks for, and return the top ``limit`` as hits. A memory with no
    evidence at all (score 0) is no hit."""
    top = sorted((m for m in scores if scores[m] > 0), key=lambda m: (-scores[m], -m))
    top = top[: max(limit * 5, RERANKED)]
    rows = store.conn.execute(
        f"SELECT {_HIT_COLUMNS} FROM memories WHERE id IN (SELECT value FROM json_each(?))",
        [json.dumps(top)],
    ).fetchall()
    by_id = {int(r[0]): tuple(r) for r in rows}
    final = {mid: scores[mid] for mid in top if mid in by_id}
    if parsed.answer and ranking.answer_boost:
        texts = {mid: str(row[2]) for mid, row in by_id.items()}
        final = answer_boosted(final, texts, answer_pattern(parsed.answer), ranking.answer_boost)
    best = sorted(final, key=lambda m: (-final[m], -m))[:limit]
    return [_hit(by_id[mid], final[mid]) for mid in best]


def _hit(row: tuple[Any, ...], score: float) -> Hit:
    (
        mid,
        kind,
        content,
        created,
        conv,
        msg,
        ext,
        profile,
        source,
        speaker,
        imp,
        conf,
        sup,
        meta,
    ) = row
    return Hit(
        id=mid,
        kind=kind,
        content=content,
        score=score,
        created_at=created,
        conversation=conv,
        message_id=msg,
        external_id=ext,
        profile=profile,
        source=source,
        speaker=speaker,
        importance=imp,
        confidence=conf,
        superseded_by=sup,
        metadata=json.loads(meta or "{}"),
    )
