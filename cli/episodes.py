"""``mem episodes``: the episodes of past conversations (one per ended session).

Lists them, newest first, or with ``--build`` writes the episodes of sessions that
ended and have none yet (offline by extraction, or by ``--model``)."""

from __future__ import annotations

from typing import Annotated

import typer

from . import render
from .app import INT64_MAX, Bounded, DbOption, JsonOption, ProfileOption, command
from .commands import open_memory


@command("episodes")
def episodes(
    conversation: Annotated[
        str | None, typer.Option("--conversation", help="Only this conversation's episodes.")
    ] = None,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", help="At most N.", click_type=Bounded(1, INT64_MAX)),
    ] = 50,
    build: Annotated[
        bool,
        typer.Option("--build", help="First write the episodes of ended sessions that lack one."),
    ] = False,
    model: Annotated[
        str | None, typer.Option(help="Model that writes --build's episodes (default: offline).")
    ] = None,
    db: DbOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """List episodes: title, time span, participants; `mem show ID` opens one."""
    with open_memory(db, profile) as mem:
        built = None
        if build:
            convs = [conversation] if conversation else None
            built = mem.build_episodes(convs, model=model)
        rows = mem.episodes(conversation=conversation, limit=limit)
    if built is not None:
        render.status(f"Built {built.added} episodes ({built.kept} already there).")
    if as_json:
        render.emit_json([m.to_dict() for m in rows])
        return
    if not rows:
        render.status(
            "No episodes yet: a conversation becomes episodes when it ends, "
            "or run `mem episodes --build` (or `mem import FILE --episodes`)."
        )
        return
    for m in rows:
        meta = m.metadata
        span = str(meta.get("start", m.created_at))[:16].replace("T", " ")
        end = str(meta.get("end", ""))[:16].replace("T", " ")
        if end and end != span:
            span += f" – {end[11:] if end[:10] == span[:10] else end}"
        who = ", ".join(str(p) for p in meta.get("participants") or [])
        render.out().print(
            f"#{m.id}  {span}  {m.conversation}  {meta.get('title', '')}  ({who})",
            markup=False,
        )
