"""`mem mcp`: serve the memory to MCP clients (Claude Desktop, Claude Code,
Cursor, any stdio or HTTP client). The SDK loads only when this command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memory.errors import UsageError

from . import render
from .app import DbOption, ProfileOption, command
from .commands import open_memory


def _server_args(
    db: str | None, profile: str | None, read_only: bool, share: list[str]
) -> list[str]:
    """The options a client must pass to start this same server."""
    args: list[str] = []
    if db:
        is_url = "://" in db  # a server's URL, kept as given (a path is made absolute)
        args += ["--db", db if is_url else str(Path(db).expanduser().resolve())]
    if profile:
        args += ["--profile", profile]
    if read_only:
        args.append("--read-only")
    for folder in share:
        args += ["--share", str(Path(folder).expanduser().resolve())]
    return args


def _shared_roots(share: list[str]) -> list[Path]:
    roots = []
    for folder in share:
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise UsageError(f"--share {folder}: no such folder; give a folder that exists.")
        roots.append(path)
    return roots


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

        print(snippet(print_config, _server_args(db, profile, read_only, folders)))
        return
    if rotate_token:
        from memory.mcp_server import rotate_token, token_path

        token = rotate_token()
        render.status(f"New MCP bearer token (shown once; kept 0600 in {token_path()}):")
        print(token)
        return
    roots = _shared_roots(folders)
    from memory.mcp_server import serve

    with open_memory(db, profile) as mem:
        serve(mem, http=http, read_only=read_only, shared_roots=roots, status=render.status)
