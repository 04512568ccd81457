"""Whole-database commands: export, import, reindex and prune. Each parses,
calls one method of :class:`memory.Memory`, renders."""

from __future__ import annotations

import sys
from typing import IO, Annotated

import typer

from memory.errors import UsageError

from . import render
from .app import DbOption, JsonOption, ProfileOption, command
from .commands import open_memory

STAGES = {
    "importing": "importing",
    "extracting": "extracting facts",
    "episodes": "building episodes",
}


@command("export")
def export(
    file: Annotated[str | None, typer.Argument(help="Output file (default: stdout).")] = None,
    db: DbOption = None,
    profile: ProfileOption = None,
) -> None:
    """Write memories, conversations and messages as JSON Lines."""
    with open_memory(db, profile) as mem:
        counts = mem.export(sys.stdout if file in (None, "-") else file)
    render.status(
        f"Exported {counts['memories']} memories, {counts['messages']} messages in "
        f"{counts['conversations']} conversations."
    )


@command("import")
def import_(
    file: Annotated[str, typer.Argument(help="JSONL file to import; '-' for stdin.")],
    extract: Annotated[
        bool,
        typer.Option(
            "--extract", help="Also index facts a model finds in the conversations (fact keys)."
        ),
    ] = False,
    episodes: Annotated[
        bool,
        typer.Option(
            "--episodes",
            help="Also make each conversation's sessions episodes (offline, or by --model).",
        ),
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(help="Model for --extract (default: MEM_MODEL or config) and --episodes."),
    ] = None,
    on_conflict: Annotated[
        str,
        typer.Option(
            "--on-conflict",
            help="Messages with the same id but other text: error, skip or replace.",
        ),
    ] = "error",
    db: DbOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import messages or a mem export; one transaction per file, idempotent."""
    source: str | IO[bytes] = sys.stdin.buffer if file == "-" else file
    keys = built = None
    with open_memory(db, profile) as mem:
        if episodes and extract:
            raise UsageError(
                "Use --extract and --episodes one at a time: import with one, then run "
                "the import again with the other (nothing is imported twice)."
            )
        if episodes:
            progress, stages = render.stage_progress(STAGES)
            with progress:
                report, built = mem.import_episodes(
                    source, model=model, on_conflict=on_conflict, progress=stages
                )
        elif extract:
            progress, stages = render.stage_progress(STAGES)
            with progress:
                report, keys = mem.import_extracting(
                    source, model=model, on_conflict=on_conflict, progress=stages
                )
        else:
            progress, update = render.progress_callback("importing")
            with progress:
                report = mem.import_(source, progress=update, on_conflict=on_conflict)
    if keys is not None and (keys.failed or keys.not_attempted):
        skipped = f", {keys.not_attempted} not attempted" if keys.not_attempted else ""
        render.status(
            f"Warning: fact extraction failed for {keys.failed} of {keys.windows} windows"
            f"{skipped} (first: {keys.first_error}); run the same import again to retry them."
        )
    if as_json:
        extra: dict[str, object] = {"fact_keys": keys.to_dict()} if keys else {}
        render.emit_json(
            report.to_dict() | extra | ({"episodes": built.to_dict()} if built else {})
        )
        return
    replaced = f", {report.messages_replaced} replaced" if report.messages_replaced else ""
    render.out().print(
        f"Imported {report.messages_added} messages ({report.messages_skipped} already there"
        f"{replaced}) and {report.memories_added} memories ({report.memories_skipped} already "
        "there)."
    )
    if keys is not None:
        read = keys.windows - keys.failed - keys.not_attempted
        render.out().print(
            f"Indexed {keys.facts_added} fact keys from {read} windows of "
            f"{keys.conversations} conversations."
        )
    if built is not None:
        render.out().print(
            f"Built {built.added} episodes ({built.kept} already there) in "
            f"{built.conversations} conversations."
        )


@command("reindex")
def reindex(
    embedder: Annotated[
        str | None,
        typer.Option(
            help="minilm-static-256 (offline, the default), hash-256 (offline, spelling "
            "only) or a litellm embedding model name. Query expansion always uses "
            "minilm-static-256's word table, whichever embedder is set."
        ),
    ] = None,
    db: DbOption = None,
    profile: ProfileOption = None,
) -> None:
    """Rebuild every vector (after changing the embedder)."""
    with open_memory(db, profile, embedder=embedder, allow_embedder_change=True) as mem:
        progress, update = render.progress_callback("reindexing")
        with progress:
            count = mem.reindex(progress=update)
        name = mem.embedder
    render.out().print(f"Reindexed {count} memories with {name}.")


@command("prune")
def prune(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete (default: only count).")] = False,
    db: DbOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Apply the retention policy of the config file ([retention]); dry run by default."""
    with open_memory(db, profile) as mem:
        report = mem.prune(dry_run=not yes)
    if as_json:
        render.emit_json({"dry_run": report.dry_run, "counts": report.counts})
        return
    if not report.total:
        render.out().print("Nothing has expired.")
        return
    parts = ", ".join(f"{n} {kind}" for kind, n in report.counts.items())
    if report.dry_run:
        render.out().print(f"Would delete {parts}: run `mem prune --yes` to delete them.")
    else:
        render.out().print(f"Deleted {parts}.")
