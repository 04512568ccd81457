"""Hybrid retrieval: FTS5 BM25 per query term + sqlite-vec KNN, then structure.

The query is parsed first (:mod:`memory.query`): its topic words, and the date
it names. Query words that are the name of a speaker in scope become a speaker
boost instead of a keyword: in a chat, "Caroline" is who speaks far more often
than what is said, and matching it in the text finds the other person
addressing her. Each remaining term is one FTS5 query (BM25 is a sum over terms,
so per-term scores add up to the usual score while letting a name count only
for memories without a speaker, such as facts).

Candidates from both legs are fetched with their neighbouring turns in one
batch query, and scored by :mod:`memory.ranking` (neighbour and session
shares, speaker, time, importance and recency boosts).

Vector search is exact (cosine over float32) when a filter already narrows the
rows (a conversation, a time range) or the store is small; otherwise a
bit-quantised KNN over ``memories_vec`` picks candidates that are re-scored
exactly, which keeps p50 within budget at 100k–1M rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import timeutil
from .embed import pack
from .errors import UsageError
from .models import KINDS, Hit
from .query import parse_query
from .ranking import Candidate, Ranking, base_scores, boosted, structural
from .text import words

if TYPE_CHECKING:
    from .store import MemoryStore

__all__ = ["Filters", "Ranking", "make_filters", "parse_where", "search"]

EXACT_VECTOR_LIMIT = 20_000
# Per-term candidates: every match when a filter narrows the scope (a
# conversation is small), the best ones otherwise.
NARROW_TERM_CAP = 2_000
BROAD_TERM_CAP = 200
# Messages whose neighbours are fetched: the best candidates by base score.
STRUCTURE_ANCHORS = 100


@dataclass
class Filters:
    kinds: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    conversation: str | None = None
    include_inactive: bool = False
    # Metadata filters (key, op, value): op "=" equals, "~=" contains, "!=" differs.
    where: tuple[tuple[str, str, str], ...] = ()

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
            f"SELECT m.speaker FROM memories_fts f JOIN memories m ON m.id = f.rowid "
            f"WHERE memories_fts MATCH ? AND {where} LIMIT 5",
            [_fts_phrase("speaker", term), *params],
        ).fetchall()
        # The index stems ("caroline" ~ "carolin"); keep only real name matches.
        if any(term in words(r[0] or "") for r in rows):
            found.add(term)
    return found


def _keyword(
    store: MemoryStore, terms: Sequence[str], where: str, params: list[Any], cap: int
) -> dict[str, dict[int, float]]:
    """BM25 of each term over memory text: term -> {memory id: score}."""
    out: dict[str, dict[int, float]] = {}
    for term in terms:
        rows = store.conn.execute(
            f"SELECT m.id, -bm25(memories_fts) AS s FROM memories_fts f "
            f"JOIN memories m ON m.id = f.rowid WHERE memories_fts MATCH ? AND {where} "
            f"ORDER BY s DESC LIMIT ?",
            [_fts_phrase("content", term), *params, cap],
        ).fetchall()
        out[term] = {int(r[0]): float(r[1]) for r in rows}
    return out


def _vector(
    store: MemoryStore, qvec: list[float], filters: Filters, where: str, params: list[Any], n: int
) -> dict[int, float]:
    """Cosine similarity of the best ``n`` memories: {memory id: similarity}."""
    if not any(qvec):
        return {}
    blob = pack(qvec)
    exact = filters.narrow
    if not exact:
        total = store.conn.execute("SELECT count(*) FROM memory_vectors").fetchone()[0]
        exact = total <= EXACT_VECTOR_LIMIT
    if exact:
        rows = store.conn.execute(
            f"SELECT m.id, vec_distance_cosine(v.vector, ?) AS d FROM memory_vectors v "
            f"JOIN memories m ON m.id = v.id WHERE {where} AND d IS NOT NULL "
            f"ORDER BY d LIMIT ?",
            [blob, *params, n],
        ).fetchall()
    else:
        k = max(n * 8, 400)
        cand = store.conn.execute(
            "SELECT id FROM memories_vec WHERE embedding MATCH vec_quantize_binary(vec_f32(?)) "
            "AND k = ?",
            [blob, k],
        ).fetchall()
        if not cand:
            return {}
        rows = store.conn.execute(
            f"SELECT m.id, vec_distance_cosine(v.vector, ?) AS d FROM memory_vectors v "
            f"JOIN memories m ON m.id = v.id "
            f"WHERE v.id IN (SELECT value FROM json_each(?)) AND {where} AND d IS NOT NULL "
            f"ORDER BY d LIMIT ?",
            [blob, json.dumps([int(r[0]) for r in cand]), *params, n],
        ).fetchall()
    return {int(r[0]): 1.0 - float(r[1]) for r in rows}


_HIT_COLUMNS = (
    "id",
    "kind",
    "content",
    "created_at",
    "conversation_id",
    "source_message_id",
    "external_id",
    "profile",
    "source",
    "speaker",
    "importance",
    "confidence",
    "superseded_by",
    "metadata",
)
_SELECT = ", ".join(f"m.{c}" for c in _HIT_COLUMNS)


def _rows(
    store: MemoryStore, ids: Sequence[int], where: str, params: list[Any]
) -> dict[int, tuple[Any, ...]]:
    """Hit rows of ``ids`` that pass the filters."""
    rows = store.conn.execute(
        f"SELECT {_SELECT} FROM memories m "
        f"WHERE m.id IN (SELECT value FROM json_each(?)) AND {where}",
        [json.dumps(list(ids)), *params],
    ).fetchall()
    return {int(r[0]): tuple(r) for r in rows}


def _neighbours(
    store: MemoryStore, anchors: Sequence[int], window: int, where: str, params: list[Any]
) -> tuple[dict[int, list[tuple[int, int]]], dict[int, tuple[Any, ...]]]:
    """The turns up to ``window`` away from each anchor message in its session
    (same conversation, same day), found in one query over an id range: ids
    grow with time, and the range leaves room for other memories in between.
    Returns anchor -> [(id, distance)] and the hit rows of those turns."""
    if not anchors or window < 1:
        return {}, {}
    span = window * 10
    rows = store.conn.execute(
        f"SELECT a.value, {_SELECT} FROM json_each(?) a "
        f"JOIN memories c ON c.id = a.value "
        f"JOIN memories m ON m.id BETWEEN a.value - ? AND a.value + ? "
        f"WHERE m.id != a.value AND m.kind = 'message' "
        f"AND m.conversation_id = c.conversation_id "
        f"AND substr(m.created_at, 1, 10) = substr(c.created_at, 1, 10) AND {where}",
        [json.dumps(list(anchors)), span, span, *params],
    ).fetchall()
    around: dict[int, list[int]] = {}
    found: dict[int, tuple[Any, ...]] = {}
    for r in rows:
        around.setdefault(int(r[0]), []).append(int(r[1]))
        found[int(r[1])] = tuple(r[1:])
    near: dict[int, list[tuple[int, int]]] = {}
    for anchor, ids in around.items():
        before = sorted((i for i in ids if i < anchor), reverse=True)[:window]
        after = sorted(i for i in ids if i > anchor)[:window]
        near[anchor] = [(i, d) for side in (before, after) for d, i in enumerate(side, start=1)]
    return near, found


def _candidate(row: tuple[Any, ...]) -> Candidate:
    return Candidate(
        id=int(row[0]),
        kind=row[1],
        conversation=row[4],
        created_at=row[3],
        speaker=row[9],
        importance=float(row[10]),
    )


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
    ranking = ranking or Ranking()
    if not query.strip():
        return []
    parsed = parse_query(query)
    where, params = filters.sql(store)
    asked = _speakers(store, parsed.terms, where, params)
    cap = NARROW_TERM_CAP if filters.narrow else max(limit * 20, BROAD_TERM_CAP)
    per_term = _keyword(store, parsed.terms, where, params, cap)
    share = ranking.vector_share(store.embedder.name)
    sims: dict[int, float] = {}
    if share > 0:
        qvec = store.embedder.embed([query])[0]
        sims = _vector(store, qvec, filters, where, params, max(limit * 5, 50))
    ids = set(sims).union(*per_term.values())
    if not ids:
        return []
    rows = _rows(store, list(ids), where, params)
    cands = {mid: _candidate(row) for mid, row in rows.items()}
    for term, scores in per_term.items():
        # A speaker's name counts in the text only of memories nobody speaks.
        name = term in asked
        for mid, score in scores.items():
            c = cands.get(mid)
            if c is not None and not (name and c.speaker):
                c.lexical += score
    for mid, sim in sims.items():
        if mid in cands:
            cands[mid].vector = sim
    base = base_scores(cands, ranking, share)
    anchors = sorted(
        (mid for mid, c in cands.items() if c.kind == "message" and base[mid] > 0),
        key=lambda mid: -base[mid],
    )[: max(limit * 10, STRUCTURE_ANCHORS)]
    near, extra = _neighbours(store, anchors, ranking.neighbour_window, where, params)
    for mid, row in extra.items():
        if mid not in cands:
            rows[mid] = row
            cands[mid] = _candidate(row)
            base[mid] = 0.0
    scores = boosted(
        cands,
        structural(cands, base, near, ranking),
        ranking,
        asked=frozenset(asked),
        when=parsed.when,
        now=timeutil.now(),
    )
    best = sorted(scores, key=lambda mid: (-scores[mid], -mid))[:limit]
    return [_hit(rows[mid], scores[mid]) for mid in best]


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
