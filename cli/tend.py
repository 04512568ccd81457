"""`mem tend` (tending, a dry run unless --yes) and `mem undo` (revert the last
batch of memory changes, as /undo does in the chat). Each parses, calls one
method of :class:`memory.Memory`, renders."""

from __future__ import annotations

from typing import Annotated

import typer

from . import render
from .app import DbOption, JsonOption, ProfileOption, command
from .commands import open_memory


@command("tend")
def tend(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply (default: only plan).")] = False,
    report: Annotated[
        bool, typer.Option("--report", help="List each change it would make, and why.")
    ] = False,
    db: DbOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Tend the memory: merge near-duplicates, strengthen used memories, retire
    stale facts, refold dropped summaries. A dry run unless --yes; `mem undo` reverts."""
    with open_memory(db, profile) as mem:
        result = mem.tend(apply=yes)
    if as_json:
        render.emit_json(result.to_dict())
        return
    out = render.out()
    changes = result.changes
    counts = result.counts()
    if not result.actions:
        out.print("Nothing to tend.")
        return
    # --report: every action and why; applied: what changed (fading changes nothing)
    for action in result.actions if report else changes if result.applied else []:
        out.print(action.line(), markup=False, highlight=False)
    parts = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
    if result.applied:
        tail = " (`mem undo` reverts them)" if changes else ""
        out.print(f"Tended: {parts}{tail}.", markup=False)
    elif changes:
        hint = "" if report else "`mem tend --report` to see them, "
        out.print(f"Would change: {parts}: {hint}`mem tend --yes` to apply.", markup=False)
    else:
        out.print(f"Nothing to change ({parts}: ranked lower, never deleted).", markup=False)


@command("undo")
def undo(
    db: DbOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revert the last batch of memory changes (a turn's, a `remember`, a `mem tend` run)."""
    with open_memory(db, profile) as mem:
        lines = mem.undo()
    if as_json:
        render.emit_json({"undone": lines})
        return
    for line in lines or ["Nothing to undo."]:
        render.out().print(line, markup=False, highlight=False)
