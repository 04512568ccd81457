"""Eval data: the questions file and the folder that holds it.

An eval folder holds ``questions.jsonl`` and, unless the live database is used,
``messages.jsonl`` in ``mem import`` format. A question line is either LoCoMo's
``{"conversation", "question", "evidence": [message ids], "category"}`` or a person's own
``{"question", "expected": ["memory text", ...]}`` (optionally with ``conversation`` and a
``category`` label); both kinds can be mixed in one file. A bad line is a one-line error
naming the file, the line and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memory.errors import EvalDataError
from memory.records import Hit

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
OTHER = "other"  # the category of a question that names none


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


def _category(value: Any, where: str) -> str | None:
    """The category label; None means "not scored" (LoCoMo's adversarial category 5)."""
    if value is None:
        return OTHER
    if isinstance(value, int) and not isinstance(value, bool):
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


def _no_questions_file(path: Path) -> EvalDataError:
    return EvalDataError(
        f"No questions file {path}: write one JSON question a line there "
        '({"question": ..., "expected": [...]}).'
    )


def load_questions(path: str | Path) -> tuple[list[Question], int]:
    """The scored questions of a questions file, and how many lines were left out.

    Left out, as LoCoMo's scoring does: questions without evidence or expected text, and
    LoCoMo categories other than 1-4.
    """
    target = Path(path)
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        raise _no_questions_file(target) from None
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
        raise _no_questions_file(questions)
    if live:
        return questions, None
    messages = folder / "messages.jsonl"
    if not messages.is_file():
        raise EvalDataError(
            f"No messages file {messages}: add the conversations to import there, or use "
            "--live to evaluate your own database."
        )
    return questions, messages
