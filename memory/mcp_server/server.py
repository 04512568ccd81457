"""The MCP server: tools, resources and a prompt over one profile's memory.

Tools are ``async`` and call the (synchronous) engine on the event loop's own
thread: the SQLite connection belongs to that thread, and calls from several
HTTP sessions are served one at a time, which SQLite would do anyway. Every
failure reaches the client as a one-line tool error; none carries a traceback.
"""

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from memory import Memory, __version__
from memory.errors import MemError

from .verbs import WRITING_TOOLS, Verbs, as_markdown

Kind = Literal["fact", "instruction", "message", "episode", "document", "summary", "example"]
ListedKind = Literal["fact", "instruction", "episode", "summary", "example"]

INSTRUCTIONS = """\
mem is the user's long-term memory: facts about them, their standing instructions,
past conversations and documents they chose to share. At the start of a session call
recent_context and follow the instructions it returns. Before answering a question
that may depend on what the user told you before, call search."""
WRITING = """ When the user states
a durable fact about themselves or asks you to remember something, call remember
(one short self-contained sentence). Only forget what the user asks you to forget."""

MAX_TEXT = 100_000  # characters of a query or a memory, as `mem search -` takes a line
READING = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)


def _one_line(text: str) -> str:
    """An error message on one line, without pydantic's type codes and links."""
    text = re.sub(r"\s*\[type=[^\]]*\]", "", text)
    text = re.sub(r"For further information visit \S+", "", text)
    return " ".join(text.split())


def _call(action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one verb: an engine error becomes a tool error with its message."""
    try:
        return action()
    except MemError as err:
        raise ToolError(_one_line(str(err))) from None
    except Exception as err:  # a bug: still one line, no traceback to the client
        raise ToolError(
            _one_line(f"unexpected {type(err).__name__}: {err} (report it to mem)")
        ) from None


def _read(action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """:func:`_call` for a resource: the error a resource read reports."""
    try:
        return _call(action)
    except ToolError as err:
        raise ResourceError(str(err)) from None


def _client_name(ctx: Context) -> str | None:
    params = ctx.session.client_params
    return params.client_info.name if params is not None else None


def build(mem: Memory, *, read_only: bool = False, shared_roots: Sequence[Path] = ()) -> MCPServer:
    """An MCP server over ``mem`` (bound to its profile, never another)."""
    verbs = Verbs(mem, list(shared_roots))

    async def guard(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """Tool errors on one line; a writing tool on a read-only server refused
        by name (the SDK alone would say "Unknown tool")."""
        result = await call_next(ctx)
        if ctx.method != "tools/call" or not isinstance(result, dict) or not result.get("isError"):
            return result
        name = (ctx.params or {}).get("name")
        for item in result.get("content") or ():
            if isinstance(item, dict) and item.get("type") == "text":
                if read_only and name in WRITING_TOOLS:
                    item["text"] = (
                        f"{name} is refused: this mem server is read-only (started with "
                        "--read-only); only search, recent_context, list and show are available."
                    )
                else:
                    item["text"] = _one_line(str(item.get("text", "")))
        return result

    server: MCPServer = MCPServer(
        "mem",
        title="mem: your long-term memory",
        instructions=INSTRUCTIONS + ("" if read_only else WRITING),
        version=__version__,
        log_level="WARNING",
        middleware=[guard],
    )

    @server.tool(annotations=READING)
    async def search(
        query: Annotated[
            str,
            Field(max_length=MAX_TEXT, description="What to look for, in the user's words."),
        ],
        limit: Annotated[int, Field(ge=1, le=100, description="Most results to return.")] = 10,
        kind: Annotated[Kind | None, Field(description="Only memories of this kind.")] = None,
        since: Annotated[
            str | None, Field(description="Only from this time on: 2026-01-31, 7d, yesterday.")
        ] = None,
        until: Annotated[str | None, Field(description="Only up to this time.")] = None,
        conversation: Annotated[
            str | None, Field(description="Only within this conversation id.")
        ] = None,
    ) -> dict[str, Any]:
        """Search the user's memory (facts, instructions, past conversations, shared
        documents) by keywords and meaning; best first, each with its id, date and
        source so you can cite it. Use before answering anything that may depend on
        what the user said before."""
        return _call(lambda: verbs.search(query, limit, kind, since, until, conversation))

    @server.tool(annotations=READING)
    async def recent_context() -> dict[str, Any]:
        """The user's standing instructions and the main facts about them: load this
        once at the start of a session and follow the instructions."""
        return _call(verbs.context)

    @server.tool(name="list", annotations=READING)
    async def list_memories(
        kind: Annotated[
            ListedKind | None, Field(description="Only this kind (default: all but messages).")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=1000, description="Most memories to list.")] = 50,
    ) -> dict[str, Any]:
        """List stored memories, newest first (to browse; use search to find)."""
        return _call(lambda: verbs.list(kind, limit))

    @server.tool(annotations=READING)
    async def show(
        id: Annotated[int, Field(ge=1, description="The memory id (from search or list).")],
    ) -> dict[str, Any]:
        """One memory in full: where it came from (the message, the client that
        wrote it) and its history of changes."""
        return _call(lambda: verbs.show(id))

    if not read_only:
        _writing_tools(server, verbs)

    @server.resource(
        "mem://instructions",
        name="instructions",
        title="Standing instructions",
        description="How the user wants to be answered, one instruction a line.",
        mime_type="text/markdown",
    )
    async def instructions() -> str:
        items = _read(verbs.context)["instructions"]
        return as_markdown(items, "No standing instructions.")

    @server.resource(
        "mem://facts",
        name="facts",
        title="Facts about the user",
        description="What the user has told about themselves, newest first.",
        mime_type="text/markdown",
    )
    async def facts() -> str:
        return as_markdown(_read(verbs.context)["facts"], "No facts remembered yet.")

    @server.prompt(name="use_memory", title="Use mem as your memory")
    async def use_memory() -> str:
        """How to use this memory well in a session."""
        tools = "search, recent_context, list, show" + (
            "" if read_only else ", remember, forget, add"
        )
        guide = INSTRUCTIONS + ("" if read_only else WRITING)
        return f"{guide}\n\nTools available: {tools}."

    return server


def _writing_tools(server: MCPServer, verbs: Verbs) -> None:
    """remember, forget and add: left out of a --read-only server."""

    @server.tool(annotations=ToolAnnotations(destructive_hint=False))
    async def remember(
        text: Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_TEXT,
                description="One self-contained sentence, e.g. 'The user's dog is called Rex.'",
            ),
        ],
        ctx: Context,
        kind: Annotated[
            Literal["fact", "instruction"],
            Field(description="fact: something true about the user; instruction: how to answer."),
        ] = "fact",
        importance: Annotated[
            float, Field(ge=0.0, le=1.0, description="0 trivial .. 1 essential.")
        ] = 0.5,
        tags: Annotated[list[str] | None, Field(description="Optional labels.")] = None,
    ) -> dict[str, Any]:
        """Store a durable fact about the user or a standing instruction, when they
        state one or ask you to remember it. Not for passing chit-chat. Secrets
        (keys, passwords) are redacted or refused."""
        client = _client_name(ctx)
        return _call(lambda: verbs.remember(text, kind, importance, tags or (), client))

    @server.tool(annotations=ToolAnnotations(destructive_hint=True))
    async def forget(
        ids: Annotated[
            list[Annotated[int, Field(ge=1)]] | None,
            Field(description="Ids of the memories to delete for good."),
        ] = None,
        query: Annotated[
            str | None,
            Field(
                description="Words: alone, shows what would be forgotten (deletes nothing); "
                "with ids, those words are also scrubbed from derived copies."
            ),
        ] = None,
    ) -> dict[str, Any]:
        """Delete memories for real, only when the user asks. Two steps: call with a
        query to see what would go, then with the ids the user confirmed."""
        return _call(lambda: verbs.forget(ids or (), query))

    @server.tool(annotations=ToolAnnotations(destructive_hint=False))
    async def add(
        paths: Annotated[
            list[str],
            Field(description="Files or folders the user shared, under a shared folder."),
        ],
    ) -> dict[str, Any]:
        """Index documents (Markdown, text, code, HTML, PDF) so search finds them.
        Only paths under the folders this server shares (`mem mcp --share DIR`)."""
        return _call(lambda: verbs.add(paths))
