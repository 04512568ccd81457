"""Running the server: stdio (what desktop clients spawn) or streamable HTTP.

HTTP binds 127.0.0.1 unless told otherwise and requires the bearer token of
:mod:`.auth` on every request; uvicorn logs warnings only, no access lines.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from memory import Memory
from memory.errors import UsageError

from . import auth

DEFAULT_HOST = "127.0.0.1"


def parse_address(text: str) -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` as (host, port)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        host = DEFAULT_HOST
    host = host.strip("[]") or DEFAULT_HOST
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise UsageError(f"Invalid --http {text!r}: use PORT or HOST:PORT, e.g. 127.0.0.1:8765.")
    return host, port


class _OneLine(logging.Formatter):
    """A log record on one line: what went wrong, never a traceback (the
    server's stderr is often a client's log window)."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"mem mcp: {record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            err = record.exc_info[1]
            text += f" ({type(err).__name__}: {err})" if str(err) else f" ({type(err).__name__})"
        return " ".join(text.split())


def _quiet_logging() -> None:
    """Warnings and errors only, one line each, on stderr (set before the SDK
    configures its own handler, which then leaves the root logger alone)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


@contextmanager
def _without_rich_logging() -> Iterator[None]:
    """Hide rich from the SDK while the server is built.

    ``MCPServer()`` calls the SDK's ``configure_logging``, which imports rich
    (15-30 ms of a 0.5 s start) to make a handler that ``logging.basicConfig``
    then discards, since :func:`_quiet_logging` has already set the root's.
    A ``None`` in ``sys.modules`` makes that import fail, and the SDK falls
    back. Modules already imported are left alone; the entries are removed after.
    """
    blocked = [name for name in ("rich.console", "rich.logging") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, "") is None:
                del sys.modules[name]


def serve(
    mem: Memory,
    *,
    http: str | None = None,
    read_only: bool = False,
    shared_roots: Sequence[Path] = (),
    status: Callable[[str], None] | None = None,
) -> None:
    """Serve ``mem`` until the client leaves (stdio) or the process is stopped."""
    from .server import build

    say = status or (lambda line: print(line, file=sys.stderr, flush=True))
    _quiet_logging()
    with _without_rich_logging():
        server = build(mem, read_only=read_only, shared_roots=shared_roots)
    if http is None:
        server.run("stdio")
        return
    host, port = parse_address(http)
    token, new = auth.load_or_create()
    if new:
        say(f"mem mcp: new bearer token (shown once; kept 0600 in {auth.token_path()}):")
        say(token)
    import uvicorn

    app = auth.require_bearer(server.streamable_http_app(host=host), token)
    shown = f"[{host}]" if ":" in host else host
    say(
        f"mem mcp: profile {mem.profile}{' (read-only)' if read_only else ''} at "
        f"http://{shown}:{port}/mcp (send Authorization: Bearer <token>)"
    )
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, log_level="warning", access_log=False
    )
    uvicorn.Server(config).run()
