"""Entry point of ``mem``: the typer application of :mod:`cli.root`, except for
the one command line a client spawns over and over (:mod:`cli.mcp_stdio`)."""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    from .mcp_stdio import serve_plain

    code = serve_plain(sys.argv[1:])
    if code is not None:
        raise SystemExit(code)
    from . import root  # noqa: F401  (registers every command)
    from .app import app

    app()


def __getattr__(name: str) -> Any:
    """``from cli.main import app`` (and the rest of :mod:`cli.root`), as before."""
    from . import root

    return getattr(root, name)


if __name__ == "__main__":
    main()
