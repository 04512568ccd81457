"""`mem forget`: by id, or by words or age after showing what would go and
asking; then one receipt line for everything that went with it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from memory.errors import ScrubPendingError, UsageError

from . import render
from .app import (
    INT64_MAX,
    Bounded,
    DbOption,
    JsonOption,
    ProfileOption,
    command,
    complete_memory_ids,
)
from .commands import KindOption, open_memory

if TYPE_CHECKING:
    from memory import ForgetReport


@command("forget")
def forget(
    ids: Annotated[
        list[int] | None,
        typer.Argument(
            help="Memory ids to forget.",
            metavar="ID...",
            click_type=Bounded(1, INT64_MAX),
            autocompletion=complete_memory_ids,
        ),
    ] = None,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="Forget memories containing these words.")
    ] = None,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Forget memories older than 90d, 1y…")
    ] = None,
    kind: KindOption = None,
    with_source: Annotated[
        bool, typer.Option("--with-source", help="Also delete the messages they came from.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: DbOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete memories for real: row, index entries and vectors; the audit keeps no text."""
    from memory import ForgetReport

    chosen = sum(bool(x) for x in (ids, query, older_than))
    if chosen != 1:
        raise UsageError("Say what to forget: memory ids, --query WORDS or --older-than 90d.")
    with open_memory(db, profile) as mem:
        if ids:
            targets = list(ids)
        else:
            selected = mem.select(query=query, older_than=older_than, kind=kind)
            if not selected:
                render.status("Nothing matches; nothing was forgotten.")
                if as_json:
                    render.emit_json(ForgetReport().to_dict())
                return
            if not as_json or not yes:
                render.status(f"{len(selected)} memories will be forgotten:")
                for row in selected[:50]:
                    render.status(f"  #{row.id} {row.kind}: {render.short(row.content, 70)}")
                if len(selected) > 50:
                    render.status(f"  … and {len(selected) - 50} more")
                if with_source or any(m.kind == "message" for m in selected):
                    render.status(
                        "  with their messages and what derives from them (facts, summaries)"
                    )
            if not yes:
                if not sys.stdin.isatty():
                    raise UsageError("Not forgetting without confirmation: add --yes.")
                if not typer.confirm("Forget them?", default=False, err=True):
                    render.status("Nothing was forgotten.")
                    raise typer.Exit(1)
            targets = [m.id for m in selected]
        report = mem.forget(targets, with_source=with_source, query=query)
    if as_json:
        render.emit_json(report.to_dict())
    else:
        render.out().print(forget_receipt(report))
    for note in report.notes:
        render.status(f"note: {note}")
    if report.scrub_pending:
        raise ScrubPendingError(
            report.scrub_hint
            or "Forgotten, but another process is reading the database, so the old text stays "
            "in its write-ahead log until the next mem command finishes the scrub: close "
            "that process."
        )


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def forget_receipt(report: ForgetReport) -> str:
    """One line: what was forgotten and every derived copy that went with it."""
    line = f"Forgot {_count(len(report.memories), 'memory', 'memories')}"
    if report.messages:
        line += f" and {_count(len(report.messages), 'source message', 'source messages')}"
    also = [
        _count(n, one, many)
        for n, one, many in (
            (len(report.derived), "derived memory", "derived memories"),
            (len(report.restored), "memory current again", "memories current again"),
            (len(report.summaries), "conversation summary", "conversation summaries"),
            (len(report.titles), "conversation title", "conversation titles"),
            (report.events, "audit entry", "audit entries"),
            (report.history, "history entry", "history entries"),
        )
        if n
    ]
    return line + (f"; also {', '.join(also)}." if also else ".")
