"""`mem mcp`: serve the memory to MCP clients (Claude Desktop, Claude Code,
Cursor, any stdio or HTTP client). The SDK loads only when this command runs."""

from __future__ import annotations

from typing import Annotated

import typer

from . import render
from .app import DbOption, ProfileOption, command
from .commands import open_memory
from .mcp_stdio import server_args, shared_roots


@command("mcp")
def mcp(
    http: Annotated[
        str | None,
        typer.Option(
            "--http",
            help="Serve streamable HTTP on [HOST:]PORT (default host 127.0.0.1) with a "
            "bearer token, instead of stdio.",
            metavar="[HOST:]PORT",
        ),
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Offer only the reading tools.")
    ] = False,
    share: Annotated[
        list[str] | None,
        typer.Option(
            "--share",
            help="A folder whose files clients may index with the add tool (repeatable).",
            metavar="DIR",
        ),
    ] = None,
    print_config: Annotated[
        str | None,
        typer.Option(
            "--print-config",
            help="Print the setup snippet for CLIENT (claude-desktop, claude-code, cursor, "
            "stdio) and exit.",
            metavar="CLIENT",
        ),
    ] = None,
    rotate_token: Annotated[
        bool,
        typer.Option("--rotate-token", help="Replace the HTTP bearer token, print it, exit."),
    ] = False,
    db: DbOption = None,
    profile: ProfileOption = None,
) -> None:
    """Serve this profile's memory over MCP (stdio by default) to an assistant."""
    folders = share or []
    if print_config is not None:
        from memory.mcp_server import snippet

        print(snippet(print_config, server_args(db, profile, read_only, folders)))
        return
    if rotate_token:
        from memory.mcp_server import rotate_token as rotate
        from memory.mcp_server import token_path

        token = rotate()
        render.status(f"New MCP bearer token (shown once; kept 0600 in {token_path()}):")
        print(token)
        return
    roots = shared_roots(folders)
    from memory.mcp_server import serve

    with open_memory(db, profile) as mem:
        serve(mem, http=http, read_only=read_only, shared_roots=roots, status=render.status)
