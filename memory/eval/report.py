"""What an eval measured: per-question results, their averages by category, the report.

Recall and budget recall are keyed by k and by token budget; ``to_dict`` gives the JSON
that ``mem eval --json`` prints, rounded so that runs compare line by line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memory.eval.questions import Question

if TYPE_CHECKING:
    from memory.formation.fact_keys import FactKeyReport


def _rounded(values: dict[int, float]) -> dict[str, float]:
    """A k- or budget-keyed average as JSON: string keys, six decimals."""
    return {str(key): round(value, 6) for key, value in values.items()}


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
            "recall": _rounded(self.recall),
            "reciprocal_rank": round(self.reciprocal_rank, 6),
            "budget_recall": _rounded(self.budget_recall),
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
            "recall": _rounded(self.recall),
            "mrr": round(self.mrr, 6),
            "budget_recall": _rounded(self.budget_recall),
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
    episodes: int | None = None  # episodes built at import (None: not built)

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
            "episodes": self.episodes,
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


def average(
    label: str, results: Sequence[QuestionResult], ks: Sequence[int], budgets: Sequence[int]
) -> Group:
    """The averages of ``results`` under ``label``."""
    n = len(results)
    return Group(
        label=label,
        questions=n,
        recall={k: sum(r.recall[k] for r in results) / n for k in ks},
        mrr=sum(r.reciprocal_rank for r in results) / n,
        budget_recall={b: sum(r.budget_recall[b] for r in results) / n for b in budgets},
    )
