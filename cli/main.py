"""Entry point: ``mem`` with no subcommand opens the chat REPL."""

from __future__ import annotations

import typer

from . import chat, commands  # noqa: F401  (register the commands)
from .app import app


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context) -> None:
    """A terminal assistant with a persistent, inspectable memory.

    Run `mem` alone to chat; `mem COMMAND --help` for each command.
    """
    if ctx.invoked_subcommand is None:
        chat.start_repl()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
