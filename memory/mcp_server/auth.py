"""The bearer token that guards ``mem mcp --http``.

One random token per data folder, in ``$MEM_HOME/mcp-token`` (mode 0600, like
the database): generated on first use and shown once, replaced by
``mem mcp --rotate-token``. The middleware compares in constant time and never
echoes what it was sent; the token itself appears in no log and no error.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from memory.config import data_dir
from memory.errors import UsageError

TOKEN_FILE = "mcp-token"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def token_path() -> Path:
    return data_dir() / TOKEN_FILE


def _write(path: Path, token: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with open(fd, "w", encoding="ascii") as handle:
            handle.write(token + "\n")
        os.replace(tmp, path)
    except OSError as err:
        raise UsageError(
            f"Cannot write the MCP token in {path.parent}: {err.strerror}; check MEM_HOME."
        ) from None


def load_or_create() -> tuple[str, bool]:
    """The token, and whether it was just made (then the caller shows it once)."""
    path = token_path()
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        token = ""
    except (OSError, UnicodeDecodeError):
        raise UsageError(
            f"Cannot read the MCP token {path}: run `mem mcp --rotate-token` for a new one."
        ) from None
    if token:
        return token, False
    token = secrets.token_urlsafe(32)
    _write(path, token)
    return token, True


def rotate() -> str:
    """A new token replacing the old one (clients holding the old one get 401)."""
    token = secrets.token_urlsafe(32)
    _write(token_path(), token)
    return token


def require_bearer(app: ASGIApp, token: str) -> ASGIApp:
    """``app`` behind an ``Authorization: Bearer TOKEN`` check on every HTTP
    request (lifespan events pass through): 401 without it or with another."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", ()):
            if name.lower() == b"authorization":
                given = value
                break
        if given and hmac.compare_digest(given, expected):
            await app(scope, receive, send)
            return
        reason = "invalid bearer token" if given else "missing bearer token"
        body = json.dumps(
            {"error": "unauthorized", "error_description": f"{reason}: see `mem mcp --http`"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="mem"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return guarded
