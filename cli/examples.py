"""`mem example`: in-context examples (memory.assistant.examples).

One command with an action (``add``, ``list``, ``rm``) rather than a group, so
that ``--db`` and ``--profile`` given before ``example`` apply as they do to
every other command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from memory.errors import UsageError

from . import render
from .app import DbOption, JsonOption, ProfileOption, command
from .commands import open_memory

if TYPE_CHECKING:
    from memory import MemoryRecord

USAGE = (
    "use `mem example add INPUT OUTPUT [--task NAME]`, `mem example list [--task NAME]` "
    "or `mem example rm ID…`"
)


def as_dict(memory: MemoryRecord) -> dict[str, Any]:
    """An example as its input, output and task (and the memory's id and date)."""
    meta = memory.metadata
    output = str(meta.get("output") or "")
    return {
        "id": memory.id,
        "input": meta.get("input") or memory.content.removesuffix(f" => {output}"),
        "output": output,
        "task": meta.get("task"),
        "created_at": memory.created_at,
    }


@command("example")
def example(
    action: Annotated[str, typer.Argument(help="add, list or rm.", metavar="ACTION")],
    args: Annotated[
        list[str] | None,
        typer.Argument(help="add: INPUT OUTPUT; rm: ID…; list: nothing.", metavar="ARGS..."),
    ] = None,
    task: Annotated[
        str | None, typer.Option("--task", help="Name the task (add), or list one task's.")
    ] = None,
    db: DbOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """In-context examples: add INPUT OUTPUT, list, rm ID…; a message like INPUT gets them.

    A message resembling an example's INPUT gets the few most similar examples
    (INPUT => OUTPUT) in its prompt; `mem ask --show-prompt` shows them."""
    given = list(args or [])
    if action == "add":
        if len(given) != 2:
            raise UsageError(f"`mem example add` takes INPUT and OUTPUT: {USAGE}.")
        with open_memory(db, profile) as mem:
            record = mem.add_example(given[0], given[1], task=task)
        if as_json:
            render.emit_json(as_dict(record))
        else:
            render.status(f"Added example #{record.id}" + (f" ({task})" if task else "") + ".")
    elif action == "list":
        if given:
            raise UsageError(f"`mem example list` takes no arguments: {USAGE}.")
        with open_memory(db, profile) as mem:
            found = [as_dict(m) for m in mem.list(kind="example")]
        found = [e for e in found if task is None or e["task"] == task]
        if as_json:
            render.emit_json(found)
        elif not found:
            render.status("No examples yet: add one with `mem example add INPUT OUTPUT`.")
        else:
            rows = [
                (str(e["id"]), e["task"] or "", render.short(e["input"], 80),
                 render.short(str(e["output"]), 80))
                for e in found
            ]  # fmt: skip
            render.table(("id", "task", "input", "output"), rows)
    elif action in ("rm", "remove"):
        _remove(given, db, profile, as_json)
    else:
        raise UsageError(f"Unknown action {action!r}: {USAGE}.")


def _remove(given: list[str], db: str | None, profile: str | None, as_json: bool) -> None:
    """Forget examples by id (only examples: `mem forget` takes any memory)."""
    try:
        ids = [int(x.lstrip("#")) for x in given]
    except ValueError:
        raise UsageError(f"`mem example rm` takes example ids: {USAGE}.") from None
    if not ids:
        raise UsageError(f"`mem example rm` needs an id: {USAGE}.")
    with open_memory(db, profile) as mem:
        for memory_id in ids:
            if mem.get(memory_id).kind != "example":
                raise UsageError(f"#{memory_id} is not an example: forget it with `mem forget`.")
        report = mem.forget(ids)
    if as_json:
        render.emit_json(report.to_dict())
    else:
        render.status(f"Removed {len(report.memories)} example(s).")
