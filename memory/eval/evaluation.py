"""``mem eval``: measure retrieval on an eval folder, in a temporary database or the live one.

The folder and its questions are read by :mod:`memory.eval.questions`, scored by
:mod:`memory.eval.scoring` (recall@k, MRR, latency, recall within a prompt's token budget)
and reported as :class:`memory.eval.report.EvalReport`.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from memory.errors import EvalDataError
from memory.eval.questions import Question, eval_files, hit_ids, load_questions
from memory.eval.report import EvalReport, percentile
from memory.eval.scoring import BUDGETS, KS, check_conversations, evaluate
from memory.lifecycle.transfer import import_file

if TYPE_CHECKING:
    from memory.formation.fact_keys import Complete
    from memory.store import MemoryStore

# Re-exported: the API, the CLI, tests and bench scripts import these from here.
__all__ = [
    "BUDGETS",
    "KS",
    "EvalReport",
    "Question",
    "StageProgress",
    "evaluate",
    "hit_ids",
    "load_questions",
    "percentile",
    "run_eval",
]

StageProgress = Callable[[str, int, int], None]


@contextlib.contextmanager
def _scratch(server: str | None) -> Iterator[Path | str]:
    """Where a temporary eval database goes: a file, or a database on ``server``."""
    if server is None:
        with tempfile.TemporaryDirectory(prefix="mem-eval-") as tmp:
            yield Path(tmp) / "eval.db"
        return
    from memory.storage.postgres.scratch import temporary_database

    with temporary_database(server) as url:
        yield url


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
    server: str | None = None,
    episodes: bool = True,
) -> EvalReport:
    """Evaluate the folder: against ``store`` (the live database) when given, else against a
    temporary database that ``DIR/messages.jsonl`` is imported into and that is deleted after
    (a file, or with ``server`` a database made on that PostgreSQL server).

    ``episodes`` builds each imported conversation's episodes offline
    (:mod:`memory.formation.episode_build`) before searching, as ``mem import --episodes`` does.
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
    with _scratch(server) as target:
        with MemoryStore.open(target, embedder=embedder, profile=profile) as temp:
            imported = import_file(temp, messages_path, progress=stage("importing"))
            check_conversations(temp, questions, f"add its messages to {messages_path}")
            built = None
            if episodes:
                from memory.formation.episode_build import build_episodes

                built = build_episodes(temp, imported.conversations, progress=stage("episodes"))
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
    report.episodes = None if built is None else built.added
    return report
