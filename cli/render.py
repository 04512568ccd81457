"""Output helpers: JSON for machines, Rich tables for people.

Rich honours ``NO_COLOR`` and falls back to plain text when stdout is not a
terminal, so pipes get no escape codes. JSON is written with ``print`` so it is
never wrapped or styled.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from memory import Assistant, Hit
    from memory import MemoryRecord as Memory

_out: Console | None = None
_err: Console | None = None


def out() -> Console:
    global _out
    if _out is None:
        from rich.console import Console

        _out = Console(highlight=False, soft_wrap=False, markup=False)
    return _out


def err() -> Console:
    global _err
    if _err is None:
        from rich.console import Console

        _err = Console(stderr=True, highlight=False, markup=False)
    return _err


def status(message: str) -> None:
    """A status line on stderr (never on stdout, which scripts read)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def short(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(columns: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """A Rich table on a terminal; tab-separated lines when piped (plain text
    for scripts, and Rich's import and layout stay off the cold-start path)."""
    if not sys.stdout.isatty():
        lines = ["\t".join(columns)] + ["\t".join(r) for r in rows]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        return
    from rich.table import Table

    grid = Table(show_edge=False, pad_edge=False, box=None)
    for name in columns:
        grid.add_column(name, no_wrap=name != "content", overflow="fold")
    for row in rows:
        grid.add_row(*row)
    out().print(grid)


def hit_source(hit: Hit) -> str:
    """Where a hit came from, in a few characters: file:lines, conversation id."""
    meta = hit.metadata
    if hit.kind == "document" and "path" in meta:
        where = os.path.basename(str(meta["path"]))
        if "line_start" in meta:
            where += f":{meta['line_start']}-{meta.get('line_end', meta['line_start'])}"
        return where
    where = hit.conversation or ""
    if hit.external_id:
        where += f" {hit.external_id}"
    elif hit.message_id:
        where += f" #{hit.message_id}"
    return where.strip() or hit.source


def hits_table(hits: Iterable[Hit]) -> None:
    rows = [
        (
            str(hit.id),
            f"{hit.score:.4f}",
            hit.kind,
            hit.created_at[:10],
            hit_source(hit),
            short(
                (f"{hit.speaker}: " if hit.speaker and hit.kind == "message" else "") + hit.content,
                300,
            ),
        )
        for hit in hits
    ]
    table(("id", "score", "kind", "when", "source", "content"), rows)


def memories_table(memories: Iterable[Memory]) -> None:
    rows = [
        (
            str(mem.id),
            mem.kind,
            mem.created_at[:16].replace("T", " "),
            f"{mem.importance:.1f}",
            "active" if mem.active else f"superseded by {mem.superseded_by or '-'}",
            short(mem.content, 200),
        )
        for mem in memories
    ]
    table(("id", "kind", "created", "imp", "status", "content"), rows)


def progress_callback(label: str) -> tuple[Any, Any]:
    """A Rich progress bar on stderr and a ``(done, total)`` callback for it.

    Returns ``(progress, callback)``; use ``with progress:``. The bar hides
    itself when stderr is not a terminal.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err(),
        transient=True,
        disable=not sys.stderr.isatty(),
    )
    task = progress.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return progress, update


def stage_progress(labels: dict[str, str]) -> tuple[Any, Any]:
    """One Rich progress display on stderr with a bar per stage, and a
    ``(stage, done, total)`` callback for it; ``labels`` words the stages.
    Use ``with progress:``; hidden when stderr is not a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err(),
        transient=True,
        disable=not sys.stderr.isatty(),
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(labels.get(stage, stage), total=total)
        progress.update(tasks[stage], completed=done, total=total)

    return progress, update


def print_prompt(assistant: Assistant, text: str, as_json: bool) -> None:
    """What ``mem chat --show-prompt`` and the REPL's /prompt print: the
    assembled prompt, its budget and what was dropped."""
    prompt = assistant.build_prompt(text)
    model = assistant.model if assistant.settings.model else None
    # The offline model is given a completion prompt, not the chat messages: show that.
    completion = model.prompt_text(prompt.sections) if model is not None else None
    if as_json:
        data = prompt.to_dict()
        if model is not None:
            data["model"] = {"name": model.name, "path": model.route}
        if completion is not None:
            data["completion_prompt"] = completion
        emit_json(data)
        return
    con = out()
    if model is not None:
        con.print(f"model {model.describe()}", markup=False, highlight=False)
    con.print(
        f"budget {prompt.budget} tokens (reply reserve {prompt.reserve}); "
        f"prompt {prompt.total_tokens} tokens"
    )
    for part in prompt.parts:
        con.print(f"  {part.name:<13}{part.tokens:>6} tokens  {part.items} items")
    for name, n in prompt.dropped.items():
        con.print(f"  dropped: {n} {name}")
    if completion is not None:
        con.rule("prompt")
        con.print(completion, markup=False, highlight=False)
        return
    for msg in prompt.messages:
        con.rule(msg["role"])
        con.print(msg["content"], markup=False, highlight=False)
