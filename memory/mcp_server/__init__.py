"""mem as an MCP server (``mem mcp``): the memory of one profile, offered to any
assistant that speaks the Model Context Protocol.

A client of the public API like the CLI: every tool is one :class:`memory.Memory`
verb. The ``mcp`` SDK is imported only by :mod:`.server` (when ``mem mcp``
runs), never by ``import memory`` or ``mem --help``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memory.mcp_server.auth import rotate as rotate_token
    from memory.mcp_server.auth import token_path
    from memory.mcp_server.client_config import snippet
    from memory.mcp_server.transport import serve

# What `mem mcp` calls: name -> (module, attribute), imported on first use.
_LAZY: dict[str, tuple[str, str]] = {
    "rotate_token": ("auth", "rotate"),
    "token_path": ("auth", "token_path"),
    "snippet": ("client_config", "snippet"),
    "serve": ("transport", "serve"),
}

__all__ = ["rotate_token", "serve", "snippet", "token_path"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'memory.mcp_server' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value
    return value
