"""Score retrieval: recall@k, MRR, latency and recall within a prompt's token budget.

Scoring mirrors ``shared/tools/locomo_recall.py`` exactly, so the two agree: LoCoMo questions
of categories 1-4 that have evidence; search only the question's conversation; recall@k is the
share of the question's evidence ids found among the external ids of the top k hits, averaged
over questions. A hit's ids are its ``external_id`` plus, for fact keys that point at several
messages, ``metadata["source_external_ids"]``. An ``expected`` text is found by a hit whose
content contains it (case-insensitive). MRR is the reciprocal rank of the first hit that finds
anything (0 when none of the top hits does).

Budget recall answers "would the prompt have shown the model the evidence?": the ranked hits
are laid out by :func:`memory.assistant.budget.fit_memories`, the function that fills the
prompt's memory section (whole memories, best first, a memory that no longer fits is
skipped, messages grouped under one heading per session), counted with tiktoken; the share
of evidence inside 500 / 1,000 / 2,000 tokens is reported next to the tokens of the whole
conversation laid out the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from memory.assistant.budget import fit_memories, layout_memories
from memory.errors import EvalDataError, NotFoundError, UsageError
from memory.eval.questions import CATEGORIES, Question
from memory.eval.report import EvalReport, QuestionResult, average, percentile
from memory.models.tokens import counter, encoding_name
from memory.records import Hit, Memory
from memory.retrieval.search import find

if TYPE_CHECKING:
    from memory.store import MemoryStore

KS = (1, 5, 10, 20)
BUDGETS = (500, 1000, 2000)
BUDGET_DEPTH = 50  # hits fetched for budget recall; doubled while they fit in the budget
MAX_BUDGET_DEPTH = 800

# search(query, limit=, conversation=) -> hits, as evaluate() calls it
Search = Callable[..., list[Hit]]


def memory_hit(memory: Memory) -> Hit:
    """A memory as a search hit (to render it the way the prompt would)."""
    return Hit(
        id=memory.id,
        kind=memory.kind,
        content=memory.content,
        score=0.0,
        created_at=memory.created_at,
        conversation=memory.conversation,
        message_id=memory.source_message_id,
        external_id=memory.external_id,
        profile=memory.profile,
        source=memory.source,
        speaker=memory.speaker,
        importance=memory.importance,
        confidence=memory.confidence,
        superseded_by=memory.superseded_by,
        metadata=memory.metadata,
    )


def _budget_recall(
    q: Question, hits: Sequence[Hit], count: Callable[[str], int], budgets: Sequence[int]
) -> dict[int, float]:
    targets = q.targets()
    out: dict[int, float] = {}
    for budget in budgets:
        kept, _, _ = fit_memories(hits, count, budget)
        found: set[str] = set().union(*(q.found_by(h) for h in kept))
        out[budget] = len(found) / len(targets)
    return out


def _layout_tokens(hits: Sequence[Hit], count: Callable[[str], int]) -> int:
    """Tokens of ``hits`` laid out as the prompt's memory section (a line and its newline)."""
    return sum(count(line) + 1 for line in layout_memories(hits))


def check_conversations(store: MemoryStore, questions: Sequence[Question], fix: str) -> None:
    """Every conversation a question names must exist; ``fix`` says how to add it."""
    for q in questions:
        if q.conversation is not None and not store.conversation_exists(q.conversation):
            raise NotFoundError(
                f"Conversation {q.conversation!r} (questions.jsonl line {q.line}) is not in "
                f"the database: {fix}."
            )


def conversation_tokens(
    store: MemoryStore, conversations: Sequence[str], count: Callable[[str], int]
) -> dict[str, int]:
    """Tokens of each whole conversation, every message rendered as a prompt memory line."""
    return {
        conv: _layout_tokens(
            [memory_hit(m) for m in store.list_memories(kind="message", conversation=conv)], count
        )
        for conv in conversations
    }


def evaluate(
    store: MemoryStore,
    questions: Sequence[Question],
    *,
    ks: Sequence[int] = KS,
    budgets: Sequence[int] = BUDGETS,
    model: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    search: Search | None = None,
) -> EvalReport:
    """Search every question in ``store`` and score it (see the module docstring).

    ``search(query, limit=, conversation=)`` defaults to the store's hybrid search
    (:func:`memory.retrieval.search.find`); a test passes canned hits.

    Recall and MRR come from one search of depth ``max(ks)`` (what locomo_recall.py asks for,
    so the rankings are the same); its time is the latency. Budget recall searches deeper
    when the top hits do not fill the largest budget.
    """
    if not questions:
        raise EvalDataError("No questions to score: give questions with evidence or expected.")
    ks = tuple(sorted(set(ks)))
    budgets = tuple(sorted(set(budgets)))
    if not ks or ks[0] < 1 or not budgets or budgets[0] < 1:
        raise UsageError("Invalid --k or budget: use whole numbers of at least 1.")
    depth = max(ks)
    count = counter(model)
    if search is None:
        search = partial(find, store)
    results: list[QuestionResult] = []
    for done, q in enumerate(questions, start=1):
        start = time.perf_counter()
        hits = search(q.query, limit=depth, conversation=q.conversation)
        elapsed = (time.perf_counter() - start) * 1000
        targets = q.targets()
        ranked = [q.found_by(h) for h in hits]
        recall = {k: len(set().union(*ranked[:k])) / len(targets) for k in ks}
        first = next((i for i, found in enumerate(ranked, start=1) if found), None)
        deep = hits
        limit = depth
        while (
            len(deep) == limit
            and _layout_tokens(deep, count) < max(budgets)
            and limit < MAX_BUDGET_DEPTH
        ):
            limit = max(limit * 2, BUDGET_DEPTH)
            deep = search(q.query, limit=limit, conversation=q.conversation)
        results.append(
            QuestionResult(
                question=q,
                recall=recall,
                reciprocal_rank=1.0 / first if first else 0.0,
                budget_recall=_budget_recall(q, deep, count, budgets),
                latency_ms=elapsed,
            )
        )
        if progress:
            progress(done, len(questions))
    numbered = {v: k for k, v in CATEGORIES.items()}
    labels = sorted({r.question.category for r in results}, key=lambda c: (numbered.get(c, 99), c))
    latencies = [r.latency_ms for r in results]
    convs = list(dict.fromkeys(q.conversation for q in questions if q.conversation is not None))
    return EvalReport(
        ks=ks,
        budgets=budgets,
        overall=average("all", results, ks, budgets),
        categories=[
            average(c, [r for r in results if r.question.category == c], ks, budgets)
            for c in labels
        ],
        latency_p50_ms=percentile(latencies, 0.5),
        latency_p95_ms=percentile(latencies, 0.95),
        conversation_tokens=conversation_tokens(store, convs, count),
        encoding=encoding_name(model),
        embedder=store.embedder.name,
        database=store.location,
        results=results,
    )
