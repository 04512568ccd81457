"""mem as an MCP server (``mem mcp``): the memory of one profile, offered to any
assistant that speaks the Model Context Protocol.

A client of the public API like the CLI: every tool is one :class:`memory.Memory`
verb. The ``mcp`` SDK is imported only by :mod:`.server` (when ``mem mcp``
runs), never by ``import memory`` or ``mem --help``.
"""
