"""The typer application with every command: ``mem`` with no subcommand opens
the chat REPL. The entry point is :mod:`cli.main`."""

from __future__ import annotations

from typing import Annotated

import typer

# Importing the command modules registers their commands.
from . import (  # noqa: F401
    admin,
    chat,
    commands,
    copy,
    database,
    documents,
    episodes,
    evaluation,
    examples,
    forget,
    mcp,
    security,
    tend,
)
from .app import DbOption, ProfileOption, app, guarded, root_options
from .lazy import registry

# The order `mem --help` lists the commands in: the memory verbs, the chat, documents, the rest.
HELP_ORDER = (
    "remember",
    "search",
    "forget",
    "list",
    "show",
    "stats",
    "export",
    "import",
    "copy",
    "reindex",
    "conversations",
    "episodes",
    "prune",
    "tend",
    "undo",
    "ask",
    "chat",
    "example",
    "add",
    "docs",
    "eval",
    "encrypt",
    "decrypt",
    "admin",
)
registry.registered_commands.sort(
    key=lambda c: HELP_ORDER.index(c.name) if c.name in HELP_ORDER else len(HELP_ORDER)
)

VersionOption = Annotated[
    bool,
    typer.Option(
        "--version", help="Print the version (with -v: schema, embedder, extras) and exit."
    ),
]


@app.callback(invoke_without_command=True)
@guarded
def _root(
    ctx: typer.Context,
    model: chat.ModelOption = None,
    memory: chat.MemoryOption = None,
    window: chat.WindowOption = None,
    budget: chat.BudgetOption = None,
    conversation: chat.ConversationOption = None,
    resume: chat.ContinueOption = False,
    verbose: chat.VerboseOption = False,
    db: DbOption = None,
    profile: ProfileOption = None,
    version: VersionOption = False,
) -> None:
    """A terminal assistant with a persistent, inspectable memory.

    Run `mem` alone to chat (the options below apply to that chat); given
    before a COMMAND they apply to it, as after it. `mem COMMAND --help` for each.
    """
    if version:
        from .version import print_version

        print_version(verbose=verbose, db=db)
        raise typer.Exit(0)
    # Read by every subcommand (cli/app.py: with_root_options).
    ctx.obj = root_options(ctx)
    if ctx.invoked_subcommand is None:
        chat.start_repl(
            model=model,
            memory=memory,
            window=window,
            budget=budget,
            conversation=conversation,
            resume=resume,
            verbose=verbose,
            db=db,
            profile=profile,
        )
