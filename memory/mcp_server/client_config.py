"""``mem mcp --print-config CLIENT``: the snippet that makes a client start mem.

Written with the absolute path of the ``mem`` being run (desktop clients start
servers without the user's shell PATH), plus the options given to
``--print-config`` itself (``--profile``, ``--db``, ``--read-only``…).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from memory.errors import UsageError

CLIENTS = {
    "claude-desktop": "Claude Desktop: merge into claude_desktop_config.json",
    "claude-code": "Claude Code: run this command",
    "cursor": "Cursor: merge into ~/.cursor/mcp.json (or .cursor/mcp.json in a project)",
    "stdio": "Any stdio client: start this command",
}


def mem_command() -> list[str]:
    """How to start this ``mem``: the installed script by absolute path when
    that is what runs, else this interpreter with ``-m cli.main``."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "mem" and argv0.exists():
        return [str(argv0.resolve())]
    found = shutil.which("mem")
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "cli.main"]


def snippet(client: str, server_args: Sequence[str]) -> str:
    """The text to paste for ``client``, starting ``mem mcp SERVER_ARGS``."""
    name = client.strip().lower()
    if name not in CLIENTS:
        raise UsageError(f"Unknown client {client!r}: use one of {', '.join(CLIENTS)}.")
    command, *prefix = mem_command()
    args = [*prefix, "mcp", *server_args]
    if name == "claude-code":
        return shlex.join(["claude", "mcp", "add", "mem", "--", command, *args])
    if name == "stdio":
        return shlex.join([command, *args])
    return json.dumps({"mcpServers": {"mem": {"command": command, "args": args}}}, indent=2)
