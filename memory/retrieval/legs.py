"""The search legs, asked of the storage seam: per-term keyword scores,
speakers named in the query, nearest vectors, what ranking reads of the
candidates, their session neighbours and the final hits read whole.

The costs are bounded here, where the search knows its shape: a filter that
leaves few rows (``scoped``) is applied inside each keyword query; otherwise
a common term is scored over its ``TERM_SCAN`` newest matches only (a common
term weighs little in BM25 anyway) and the filters are applied to the
candidates afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from memory.records import Hit, Memory
from memory.retrieval.ranking import Candidate
from memory.storage.protocol import Column, StorageBackend
from memory.storage.records import MemoryFilter
from memory.storage.scope import Scope
from memory.text import words

# Stores up to this many rows are searched by exact vector scan, not KNN.
EXACT_VECTOR_LIMIT = 2_000
# Without a narrowing filter, a term is scored over at most its newest matches.
TERM_SCAN = 1_000
# The scope alone, every row of it: the filter of the unfiltered first passes.
SCOPE_ONLY = MemoryFilter(include_inactive=True)


def speakers(
    backend: StorageBackend, scope: Scope, terms: Sequence[str], filters: MemoryFilter
) -> set[str]:
    """Query terms that name a speaker of a memory within the filters."""
    found: set[str] = set()
    for term in terms:
        names = backend.speakers(scope, term, filters, limit=5)
        # The index stems names ("nicole" ~ "nicol"); keep only real name matches.
        if any(term in words(name) for name in names):
            found.add(term)
    return found


def keyword(
    backend: StorageBackend,
    scope: Scope,
    terms: Iterable[str],
    filters: MemoryFilter,
    scoped: bool,
    cap: int,
    column: Column = "content",
) -> dict[str, dict[int, float]]:
    """BM25 of each term over one column (the memory's text, or its
    speaker): term -> {memory id: score}, the best ``cap`` per term (see the
    module docstring for ``scoped``)."""
    wide = filters if scoped else SCOPE_ONLY
    newest = None if scoped else TERM_SCAN
    return {
        term: backend.keyword_scores(scope, term, wide, column=column, limit=cap, newest=newest)
        for term in terms
    }


def nearest(
    backend: StorageBackend,
    scope: Scope,
    vector: Sequence[float],
    filters: MemoryFilter,
    n: int,
    scan_rows: int,
) -> dict[int, float]:
    """The ``n`` memories nearest the query vector: {memory id: similarity}.

    Exact (cosine over float32) when a filter narrows the rows or the store is
    small (``scan_rows``, the backend's row bound); otherwise an approximate
    search of ``2n`` in the scope, re-scored exactly, whose candidates the
    filters then sift with the others."""
    if filters.narrow or scan_rows <= EXACT_VECTOR_LIMIT:
        return backend.nearest(scope, vector, filters, k=n, exact=True)
    return backend.nearest(scope, vector, SCOPE_ONLY, k=n * 2, exact=False)


def candidates(
    backend: StorageBackend, scope: Scope, ids: Iterable[int], filters: MemoryFilter
) -> dict[int, Candidate]:
    """What scoring needs of the memories ``ids`` that pass the filters (not
    their text: only the final hits are read whole)."""
    return {b[0]: Candidate(*b) for b in backend.briefs(scope, ids, filters)}


def neighbours(
    backend: StorageBackend,
    scope: Scope,
    anchors: Mapping[int, Candidate],
    window: int,
    filters: MemoryFilter,
) -> tuple[dict[int, list[tuple[int, int]]], dict[int, Candidate]]:
    """The messages up to ``window`` turns before and after each anchor
    message, in its session (same conversation, same day), that pass the
    filters. Returns anchor -> [(id, distance)] and those messages as
    candidates."""
    if not anchors or window < 1:
        return {}, {}
    around = backend.session_neighbours(scope, list(anchors), window, SCOPE_ONLY)
    found = candidates(backend, scope, {i for pairs in around.values() for i, _ in pairs}, filters)
    near: dict[int, list[tuple[int, int]]] = {}
    for anchor, pairs in around.items():
        session = anchors[anchor].session
        near[anchor] = [
            (i, abs(offset)) for i, offset in pairs if i in found and found[i].session == session
        ]
    return near, found


def hits(backend: StorageBackend, scope: Scope, ids: Sequence[int]) -> dict[int, Memory]:
    """The memories ``ids`` read whole, by id."""
    return {m.id: m for m in backend.memories(scope, ids)}


def hit(memory: Memory, score: float) -> Hit:
    m = memory
    return Hit(
        id=m.id,
        kind=m.kind,
        content=m.content,
        score=score,
        created_at=m.created_at,
        conversation=m.conversation,
        message_id=m.source_message_id,
        external_id=m.external_id,
        profile=m.profile,
        source=m.source,
        speaker=m.speaker,
        importance=m.importance,
        confidence=m.confidence,
        superseded_by=m.superseded_by,
        metadata=m.metadata,
    )
