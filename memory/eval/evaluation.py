"""Measure retrieval: recall@k, MRR, latency and recall within a prompt's token budget.

An eval folder holds ``questions.jsonl`` and, unless the live database is used,
``messages.jsonl`` in ``mem import`` format. A question line is either LoCoMo's
``{"conversation", "question", "evidence": [message ids], "category"}`` or a person's own
``{"question", "expected": ["memory text", ...]}`` (optionally with ``conversation`` and a
``category`` label); both kinds can be mixed in one file.

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

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory.assistant.budget import fit_memories, layout_memories
from memory.errors import EvalDataError, NotFoundError, UsageError
from memory.lifecycle.transfer import import_file
from memory.models.tokens import counter, encoding_name
from memory.records import Hit, Memory
from memory.retrieval.search import find

if TYPE_CHECKING:
    from memory.formation.fact_keys import Complete, FactKeyReport
    from memory.store import MemoryStore

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (1, 5, 10, 20)
BUDGETS = (500, 1000, 2000)
OTHER = "other"  # the category of a question that names none
BUDGET_DEPTH = 50  # hits fetched for budget recall; doubled while they fit in the budget
MAX_BUDGET_DEPTH = 800

StageProgress = Callable[[str, int, int], None]
# search(query, limit=, conversation=) -> hits, as evaluate() calls it
Search = Callable[..., list[Hit]]


@dataclass(frozen=True)
class Question:
    question: str
    conversation: str | None
    evidence: tuple[str, ...]
    expected: tuple[str, ...]
    category: str
    line: int

    @property
    def query(self) -> str:
        """The text searched, as ``mem search -`` receives it (one line, stripped)."""
        return self.question.replace("\n", " ").strip()

    def targets(self) -> set[str]:
        return {f"id:{e.strip()}" for e in self.evidence} | {
            f"text:{_norm(x)}" for x in self.expected
        }

    def found_by(self, hit: Hit) -> set[str]:
        """The question's targets this one hit supplies."""
        found = {f"id:{i}" for i in hit_ids(hit)}
        if self.expected:
            content = _norm(hit.content)
            found |= {f"text:{_norm(x)}" for x in self.expected if _norm(x) in content}
        return found & self.targets()


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def hit_ids(hit: Hit) -> set[str]:
    """External ids a hit points at: its own and, for fact keys, all of its source messages."""
    ids = {str(hit.external_id)} if hit.external_id else set()
    extra = hit.metadata.get("source_external_ids") if isinstance(hit.metadata, dict) else None
    if isinstance(extra, list):
        ids |= {str(x) for x in extra if x}
    return ids


# ---------------------------------------------------------------------- loading
def _category(value: Any, where: str) -> str | None:
    """The category label; None means "not scored" (LoCoMo's adversarial category 5)."""
    if value is None:
        return OTHER
    if isinstance(value, bool):
        raise EvalDataError(f'{where}: "category" must be 1-4 or a label; fix that line.')
    if isinstance(value, int):
        return CATEGORIES.get(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise EvalDataError(f'{where}: "category" must be 1-4 or a label; fix that line.')


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise EvalDataError(f'{where}: "{key}" must be a list of strings; fix that line.')
    return tuple(str(v) for v in value if str(v).strip())


def load_questions(path: str | Path) -> tuple[list[Question], int]:
    """The scored questions of a questions file, and how many lines were left out.

    Left out, as LoCoMo's scoring does: questions without evidence or expected text, and
    LoCoMo categories other than 1-4.
    """
    target = Path(path)
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        raise EvalDataError(
            f"No questions file {target}: write one JSON question a line there "
            '({"question": ..., "expected": [...]}).'
        ) from None
    except IsADirectoryError:
        raise EvalDataError(f"{target} is a folder: questions.jsonl must be a file.") from None
    questions: list[Question] = []
    skipped = 0
    for lineno, line in enumerate(raw.splitlines(), start=1):
        where = f"{target}:{lineno}"
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise EvalDataError(f"{where}: not valid JSON; fix or remove that line.") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("question"), str):
            raise EvalDataError(f'{where}: needs a "question" string; fix or remove that line.')
        conv = obj.get("conversation")
        if conv is not None and not isinstance(conv, str | int):
            raise EvalDataError(f'{where}: "conversation" must be a string; fix that line.')
        evidence = _strings(obj.get("evidence"), "evidence", where)
        expected = _strings(obj.get("expected"), "expected", where)
        category = _category(obj.get("category"), where)
        if category is None or not (evidence or expected) or not obj["question"].strip():
            skipped += 1
            continue
        questions.append(
            Question(
                question=obj["question"],
                conversation=None if conv is None else str(conv),
                evidence=evidence,
                expected=expected,
                category=category,
                line=lineno,
            )
        )
    return questions, skipped


# ---------------------------------------------------------------------- scoring
@dataclass
class QuestionResult:
    question: Question
    recall: dict[int, float]
    reciprocal_rank: float
    budget_recall: dict[int, float]
    latency_ms: float

    def to_dict(self) -> dict[str, Any]:
        q = self.question
        return {
            "line": q.line,
            "question": q.question,
            "conversation": q.conversation,
            "category": q.category,
            "recall": {str(k): round(v, 6) for k, v in self.recall.items()},
            "reciprocal_rank": round(self.reciprocal_rank, 6),
            "budget_recall": {str(b): round(v, 6) for b, v in self.budget_recall.items()},
        }


@dataclass
class Group:
    """Averages over a set of questions (one category, or all)."""

    label: str
    questions: int
    recall: dict[int, float]
    mrr: float
    budget_recall: dict[int, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.label,
            "questions": self.questions,
            "recall": {str(k): round(v, 6) for k, v in self.recall.items()},
            "mrr": round(self.mrr, 6),
            "budget_recall": {str(b): round(v, 6) for b, v in self.budget_recall.items()},
        }


@dataclass
class EvalReport:
    ks: tuple[int, ...]
    budgets: tuple[int, ...]
    overall: Group
    categories: list[Group]
    latency_p50_ms: float
    latency_p95_ms: float
    conversation_tokens: dict[str, int]
    encoding: str
    embedder: str
    skipped: int = 0
    database: str = "temporary"
    results: list[QuestionResult] = field(default_factory=list)
    fact_keys: FactKeyReport | None = None

    @property
    def mean_conversation_tokens(self) -> float:
        values = list(self.conversation_tokens.values())
        return sum(values) / len(values) if values else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "questions": self.overall.questions,
            "skipped": self.skipped,
            "ks": list(self.ks),
            "budgets": list(self.budgets),
            "overall": self.overall.to_dict(),
            "categories": [g.to_dict() for g in self.categories],
            "latency_ms": {
                "p50": round(self.latency_p50_ms, 3),
                "p95": round(self.latency_p95_ms, 3),
            },
            "conversation_tokens": {
                "mean": round(self.mean_conversation_tokens, 1),
                "by_conversation": self.conversation_tokens,
            },
            "encoding": self.encoding,
            "embedder": self.embedder,
            "database": self.database,
            "fact_keys": None if self.fact_keys is None else self.fact_keys.to_dict(),
            "results": [r.to_dict() for r in self.results],
        }


def percentile(values: Sequence[float], share: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * share
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


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


def _group(
    label: str, results: Sequence[QuestionResult], ks: Sequence[int], budgets: Sequence[int]
) -> Group:
    n = len(results)
    return Group(
        label=label,
        questions=n,
        recall={k: sum(r.recall[k] for r in results) / n for k in ks},
        mrr=sum(r.reciprocal_rank for r in results) / n,
        budget_recall={b: sum(r.budget_recall[b] for r in results) / n for b in budgets},
    )


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
        overall=_group("all", results, ks, budgets),
        categories=[
            _group(c, [r for r in results if r.question.category == c], ks, budgets) for c in labels
        ],
        latency_p50_ms=percentile(latencies, 0.5),
        latency_p95_ms=percentile(latencies, 0.95),
        conversation_tokens=conversation_tokens(store, convs, count),
        encoding=encoding_name(model),
        embedder=store.embedder.name,
        database=str(store.path),
        results=results,
    )


# ------------------------------------------------------------------ a whole folder
def eval_files(directory: str | Path, *, live: bool) -> tuple[Path, Path | None]:
    """``DIR/questions.jsonl`` and (unless live) ``DIR/messages.jsonl``, checked."""
    folder = Path(directory)
    if not folder.exists():
        raise EvalDataError(
            f"No such folder: {folder}; give the folder that holds questions.jsonl"
            + ("." if live else " and messages.jsonl.")
        )
    if not folder.is_dir():
        raise EvalDataError(
            f"{folder} is not a folder: give the folder that holds questions.jsonl, not a file."
        )
    questions = folder / "questions.jsonl"
    if not questions.is_file():
        raise EvalDataError(
            f"No questions file {questions}: write one JSON question a line there "
            '({"question": ..., "expected": [...]}).'
        )
    if live:
        return questions, None
    messages = folder / "messages.jsonl"
    if not messages.is_file():
        raise EvalDataError(
            f"No messages file {messages}: add the conversations to import there, or use "
            "--live to evaluate your own database."
        )
    return questions, messages


def run_eval(
    directory: str | Path,
    *,
    store: MemoryStore | None = None,
    embedder: str | None = None,
    profile: str | None = None,
    ks: Sequence[int] = KS,
    budgets: Sequence[int] = BUDGETS,
    model: str | None = None,
    limit: int | None = None,
    extract: Complete | None = None,
    progress: StageProgress | None = None,
) -> EvalReport:
    """Evaluate the folder: against ``store`` (the live database) when given, else against a
    temporary database that ``DIR/messages.jsonl`` is imported into and that is deleted after.

    ``extract`` (a model's ``complete``) also indexes fact keys
    (:mod:`memory.formation.fact_keys`) in the temporary database before searching.
    ``progress(stage, done, total)`` reports the stages "importing", "extracting" and "searching".
    """
    from memory.store import MemoryStore

    questions_path, messages_path = eval_files(directory, live=store is not None)
    questions, skipped = load_questions(questions_path)
    if limit is not None:
        if limit < 1:
            raise EvalDataError(f"Invalid --limit {limit}: use a whole number of at least 1.")
        questions = questions[:limit]

    def stage(name: str) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        report = progress
        return lambda done, total: report(name, done, total)

    if store is not None:
        check_conversations(
            store, questions, "import its messages first (`mem import FILE`), or drop --live"
        )
        report = evaluate(
            store, questions, ks=ks, budgets=budgets, model=model, progress=stage("searching")
        )
        report.skipped = skipped
        return report
    assert messages_path is not None
    with tempfile.TemporaryDirectory(prefix="mem-eval-") as tmp:
        with MemoryStore.open(Path(tmp) / "eval.db", embedder=embedder, profile=profile) as temp:
            imported = import_file(temp, messages_path, progress=stage("importing"))
            check_conversations(temp, questions, f"add its messages to {messages_path}")
            keys = None
            if extract is not None:
                from memory.formation.fact_keys import extract_fact_keys

                keys = extract_fact_keys(
                    temp, extract, imported.conversations, progress=stage("extracting")
                )
            report = evaluate(
                temp, questions, ks=ks, budgets=budgets, model=model, progress=stage("searching")
            )
    report.skipped = skipped
    report.database = "temporary"
    report.fact_keys = keys
    return report
