"""Entry point: ``mem`` with no subcommand opens the chat REPL."""

from __future__ import annotations

import typer

# Importing the command modules registers their commands.
from . import chat, commands, documents, evaluation, security  # noqa: F401
from .app import DbOption, ProfileOption, app, guarded


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
) -> None:
    """A terminal assistant with a persistent, inspectable memory.

    Run `mem` alone to chat (the options below apply to that chat);
    `mem COMMAND --help` for each command.
    """
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
