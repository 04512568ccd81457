"""Memory commands: remember, search, list, show, stats, conversations (forget
is in cli/forget.py, the whole-database ones in cli/database.py). Each parses, calls one
method of :class:`memory.Memory`, renders."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Annotated

import typer

from memory import Hit

if TYPE_CHECKING:
    from memory import Memory
from memory.errors import InvalidInputError, UsageError

from . import render
from .app import (
    INT64_MAX,
    MAX_RESULTS,
    Bounded,
    DbOption,
    JsonOption,
    ProfileOption,
    command,
    complete_conversations,
    complete_memory_ids,
)

IMPORTANCE = "Invalid importance {value}: use a number from 0 to 1."


def open_memory(
    db: str | None,
    profile: str | None,
    *,
    embedder: str | None = None,
    allow_embedder_change: bool = False,
) -> Memory:
    """Open the memory the way every command does (config, env, options)."""
    from memory import Memory

    return Memory.open(
        db, profile=profile, embedder=embedder, allow_embedder_change=allow_embedder_change
    )


MAX_QUERY_BYTES = 100_000


def _bounded_lines(stream: IO[bytes], limit: int) -> Iterator[bytes]:
    """Lines of ``stream``, each read with a bounded readline: a longer line (a
    3 GB one, or /dev/zero) is an error, never read whole into memory."""
    while raw := stream.readline(limit + 1):
        if len(raw) > limit and not (len(raw) == limit + 1 and raw.endswith(b"\n")):
            raise InvalidInputError(
                f"A query line on stdin is longer than {limit // 1000} KB: send one short "
                "query a line."
            )
        yield raw


KindOption = Annotated[
    str | None,
    typer.Option(
        "--kind", help="fact, instruction, message, episode, document, summary or example."
    ),
]


@command("remember")
def remember(
    text: Annotated[str, typer.Argument(help="What to remember.")],
    kind: Annotated[str, typer.Option(help="fact or instruction.")] = "fact",
    importance: Annotated[
        float,
        typer.Option(
            help="0 to 1; weighs the memory in search.",
            click_type=Bounded(0.0, 1.0, whole=False, below=IMPORTANCE, above=IMPORTANCE),
        ),
    ] = 0.5,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    db: DbOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store a memory (a fact or a standing instruction), not a chat message."""
    with open_memory(db, profile) as mem:
        memory = mem.remember(text, kind=kind, importance=importance, tags=tag or ())
    if as_json:
        render.emit_json(memory.to_dict())
    else:
        render.out().print(f"Remembered #{memory.id} ({memory.kind}): {memory.content}")
        if memory.metadata.get("redacted"):
            render.status(
                f"note: redacted {', '.join(memory.metadata['redacted'])} before storing; "
                "secrets never become memories"
            )


@command("search")
def search(
    query: Annotated[str, typer.Argument(help="What to look for; '-' reads one query a line.")],
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            "-n",
            help=f"How many results (at most {MAX_RESULTS}).",
            click_type=Bounded(
                1, MAX_RESULTS, below="Invalid limit {value}: use a whole number of at least 1."
            ),
        ),
    ] = 10,
    kind: KindOption = None,
    since: Annotated[
        str | None, typer.Option(help="Only after: 2024-05-01, 7d, yesterday.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only before: a date or a duration ago.")
    ] = None,
    conversation: Annotated[
        str | None,
        typer.Option(
            "--conversation",
            help="Only this conversation id.",
            autocompletion=complete_conversations,
        ),
    ] = None,
    include_all: Annotated[
        bool, typer.Option("--all", help="Include superseded and expired memories.")
    ] = False,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            help="Metadata filter KEY=VALUE, KEY~=VALUE (contains) or KEY!=VALUE (repeatable).",
            metavar="KEY~=VALUE",
        ),
    ] = None,
    db: DbOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Hybrid keyword + vector search over memories and messages."""
    with open_memory(db, profile) as mem:

        def find(q: str) -> list[Hit]:
            return mem.search(
                q,
                limit=limit,
                kinds=kind,
                since=since,
                until=until,
                conversation=conversation,
                include_inactive=include_all,
                where=where,
            )

        def run(q: str) -> list[dict[str, object]]:
            return [h.to_dict() for h in find(q)]

        if query == "-":
            if sys.stdin.isatty():
                raise UsageError("`mem search -` reads queries from stdin: pipe them in.")
            run("")  # validates the filters once, even when stdin is empty
            for raw in _bounded_lines(sys.stdin.buffer, MAX_QUERY_BYTES):
                if b"\x00" in raw:
                    raise InvalidInputError(
                        "stdin contains NUL bytes (binary data?): pipe one text query a line."
                    )
                try:
                    line = raw.decode("utf-8").strip()
                except UnicodeDecodeError:
                    raise InvalidInputError(
                        "stdin is not valid UTF-8: convert the queries to UTF-8."
                    ) from None
                if not line:
                    continue
                render.emit_json({"query": line, "results": run(line)})
            return
        if as_json:
            render.emit_json(run(query))
            return
        hits = find(query)
    if not hits:
        render.status("No matches.")
        return
    render.hits_table(hits)


@command("list")
def list_(
    kind: KindOption = None,
    include_all: Annotated[bool, typer.Option("--all", help="Include superseded ones.")] = False,
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", help="At most N.", click_type=Bounded(1, INT64_MAX)),
    ] = None,
    conversation: Annotated[
        str | None,
        typer.Option(help="Only this conversation.", autocompletion=complete_conversations),
    ] = None,
    db: DbOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """List memories, newest first (messages and document chunks only with --kind)."""
    with open_memory(db, profile) as mem:
        mems = mem.list(
            kind=kind, include_inactive=include_all, limit=limit, conversation=conversation
        )
    if as_json:
        render.emit_json([m.to_dict() for m in mems])
    elif not mems:
        render.status("No memories yet: add one with `mem remember TEXT`.")
    else:
        render.memories_table(mems)


@command("show")
def show(
    memory_id: Annotated[
        int,
        typer.Argument(
            help="Memory id.",
            metavar="ID",
            click_type=Bounded(1, INT64_MAX),
            autocompletion=complete_memory_ids,
        ),
    ],
    db: DbOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """One memory with its provenance and its history."""
    with open_memory(db, profile) as mem:
        detail = mem.show(memory_id)
    if as_json:
        render.emit_json(detail.to_dict())
        return
    memory, message, events = detail.memory, detail.source_message, detail.history
    con = render.out()
    con.print(f"#{memory.id} {memory.kind} · profile {memory.profile}")
    con.print(memory.content)
    con.print(f"created {memory.created_at} · updated {memory.updated_at}")
    con.print(
        f"importance {memory.importance:.2f} · confidence {memory.confidence:.2f} · "
        f"used {memory.use_count}×"
    )
    if not memory.active:
        con.print(f"superseded by #{memory.superseded_by} on {memory.valid_until}")
    if memory.source.startswith("mcp:"):  # written by an MCP client (`mem mcp`)
        con.print(f"source: from {memory.source[4:]}, {memory.created_at[:10]} (through MCP)")
    else:
        con.print(f"source: {memory.source}")
    if message:
        ext = f" ({message.external_id})" if message.external_id else ""
        con.print(
            f"from message #{message.id}{ext} in {message.conversation} at {message.created_at}: "
            f"{render.short(message.content, 100)}"
        )
    if memory.metadata:
        con.print(f"metadata: {json.dumps(memory.metadata, ensure_ascii=False)}")
    if detail.turns:
        con.print(f"turns ({len(detail.turns)}):")
        for turn in detail.turns:
            ext = f" ({turn.external_id})" if turn.external_id else ""
            con.print(
                f"  #{turn.id}{ext} {turn.speaker or turn.role}: {render.short(turn.content, 100)}",
                markup=False,
            )
    if events:
        con.print("history:")
        for ev in events:
            what = ""
            if ev.after and "content" in ev.after:
                what = f": {render.short(str(ev.after['content']), 70)}"
            con.print(f"  {ev.at} {ev.event} by {ev.actor}{what}")


@command("stats")
def stats(db: DbOption = None, profile: ProfileOption = None, as_json: JsonOption = False) -> None:
    """Counts per kind, database size and the embedder."""
    with open_memory(db, profile) as mem:
        data = mem.stats()
    if as_json:
        render.emit_json(data)
        return
    con = render.out()
    con.print(f"database   {data['path']} ({data['size_bytes'] / 1e6:.1f} MB)")
    con.print(f"profile    {data['profile']}")
    con.print(f"embedder   {data['embedder']} ({data['embedder_dim']} dims)")
    con.print(f"messages   {data['messages']} in {data['conversations']} conversations")
    for kind, counts in data["kinds"].items():
        con.print(f"{kind:<10} {counts['active']} active, {counts['inactive']} superseded")


@command("conversations")
def conversations(
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", help="At most N.", click_type=Bounded(1, INT64_MAX)),
    ] = 50,
    db: DbOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """List conversations, most recent first."""
    with open_memory(db, profile) as mem:
        rows = mem.conversations(limit)
    if as_json:
        render.emit_json(rows)
        return
    if not rows:
        render.status("No conversations yet: start one with `mem`.")
        return
    for row in rows:
        render.out().print(
            f"{row['id']}  {row['updated_at'][:16].replace('T', ' ')}  "
            f"{row['messages']} messages  {row['title'] or ''}"
        )
