"""``mem mcp`` as a client spawns it, started without typer.

An MCP client starts a new server for each session and waits for its first
answer. Importing the SDK is about 0.4 s of the 0.5 s that may take; typer and
the command modules would add 0.05 s more. So the command lines
``mem mcp --print-config`` writes (``mcp``, then only ``--db``, ``--profile``,
``--read-only`` and ``--share``) are served from here. Every other line
(``--help``, ``--http``, an option before ``mcp``, a typo, an option given
twice) goes through typer, as every command does. So does every error: a bad
option value or a database that will not open is reported by that path, and a
failure while serving goes through the CLI's one error mapping
(:func:`cli.app.guarded`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_WITH_VALUE = {"--db": "db", "--profile": "profile", "--share": "share"}
_FLAGS = {"--read-only": "read_only"}


def server_args(
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


def shared_roots(share: list[str]) -> list[Path]:
    from memory.errors import UsageError

    roots = []
    for folder in share:
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise UsageError(f"--share {folder}: no such folder; give a folder that exists.")
        roots.append(path)
    return roots


def parse(argv: list[str]) -> dict[str, Any] | None:
    """The options of a plain ``mem mcp`` line, or None for typer to parse."""
    if not argv or argv[0] != "mcp" or "_MEM_COMPLETE" in os.environ:
        return None
    opts: dict[str, Any] = {"db": None, "profile": None, "read_only": False, "share": []}
    rest = argv[1:]
    i = 0
    while i < len(rest):
        name, eq, value = rest[i].partition("=")
        i += 1
        if name in _FLAGS and not eq:
            if opts[_FLAGS[name]]:
                return None
            opts[_FLAGS[name]] = True
            continue
        if name not in _WITH_VALUE:
            return None
        if not eq:
            if i >= len(rest):
                return None
            value = rest[i]
            i += 1
        if not value or value.startswith("-"):
            return None
        key = _WITH_VALUE[name]
        if key == "share":
            opts["share"].append(value)
        elif opts[key] is not None:
            return None
        else:
            opts[key] = value
    return opts


def serve_plain(argv: list[str]) -> int | None:
    """Serve a plain ``mem mcp`` line over stdio and return its exit code; None
    when typer must take the line (see the module docstring)."""
    opts = parse(argv)
    if opts is None:
        return None
    from memory import Memory

    try:
        roots = shared_roots(opts["share"])
        mem = Memory.open(opts["db"], profile=opts["profile"])
    except KeyboardInterrupt as err:  # Ctrl-C while opening: "Interrupted.", as typer's path
        return _mapped(err, opts["db"])
    except Exception:
        return None  # typer's path opens it again and reports why it will not
    from memory.mcp_server import serve

    try:
        with mem:
            serve(mem, read_only=opts["read_only"], shared_roots=roots)
    except BaseException as err:
        return _mapped(err, opts["db"])
    return 0


def _mapped(err: BaseException, db: str | None) -> int:
    """The exit code (and the one-line message) the CLI gives ``err``."""
    import click

    from .app import guarded

    @guarded
    def again(db: str | None = None) -> None:
        raise err

    try:
        again(db=db)
    except click.exceptions.Exit as done:
        return done.exit_code
    return 0
