"""What each MCP tool does, as plain functions over one open :class:`Memory`.

No ``mcp`` import here: :mod:`.server` wraps these in tools, and the results are
JSON-ready dicts a model reads. Each is one public-API verb, so the scope (one
profile), the secret gate and the audit trail are the engine's, as for the CLI.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memory import Memory, MemoryRecord
from memory.errors import UsageError

# How many profile facts a session loads up front: the assistant's own cap.
CONTEXT_FACTS = 40
SOURCE_PREFIX = "mcp:"
WRITING_TOOLS = ("remember", "forget", "add")
_CLIENT_NAME_MAX = 64


def client_source(name: str | None) -> str:
    """The ``source`` a memory written by this client records: ``mcp:NAME``.

    The name comes from the client's initialize handshake, so it is untrusted
    text: control characters dropped, whitespace collapsed, length capped."""
    spaced = (" " if c.isspace() else c for c in name or "")
    cleaned = "".join(c for c in spaced if c == " " or unicodedata.category(c)[0] not in "CZ")
    cleaned = " ".join(cleaned.split())[:_CLIENT_NAME_MAX]
    return SOURCE_PREFIX + (cleaned or "unnamed client")


def record(memory: MemoryRecord) -> dict[str, Any]:
    """A memory as a tool returns it: what a model needs to cite and act on."""
    data: dict[str, Any] = {
        "id": memory.id,
        "kind": memory.kind,
        "content": memory.content,
        "created_at": memory.created_at,
        "source": memory.source,
        "importance": memory.importance,
    }
    tags = memory.metadata.get("tags") if memory.metadata else None
    if tags:
        data["tags"] = tags
    if memory.superseded_by is not None:
        data["superseded_by"] = memory.superseded_by
    return data


@dataclass
class Verbs:
    """The tools' behaviour over one open memory (one profile)."""

    mem: Memory
    shared_roots: Sequence[Path] = field(default_factory=list)

    def remember(
        self, text: str, kind: str, importance: float, tags: Sequence[str], client: str | None
    ) -> dict[str, Any]:
        if not text.strip():
            raise UsageError("Nothing to remember: give some text.")
        saved = self.mem.remember(
            text, kind=kind, importance=importance, tags=tags, source=client_source(client)
        )
        return {"remembered": record(saved)}

    def search(
        self,
        query: str,
        limit: int,
        kind: str | None,
        since: str | None,
        until: str | None,
        conversation: str | None,
    ) -> dict[str, Any]:
        hits = self.mem.search(
            query, limit=limit, kinds=kind, since=since, until=until, conversation=conversation
        )
        keep = ("id", "kind", "content", "score", "created_at", "source", "conversation")
        return {"results": [{k: h.to_dict()[k] for k in keep} for h in hits]}

    def forget(self, ids: Sequence[int], query: str | None) -> dict[str, Any]:
        if not ids:
            if not query or not query.strip():
                raise UsageError("Nothing to forget: give ids, or a query to see what would go.")
            found = self.mem.select(query=query)
            return {
                "dry_run": True,
                "would_forget": [record(m) for m in found],
                "next_step": (
                    "Nothing was deleted. To forget these, call forget again with their ids "
                    "(and the same query, so copies of the words are scrubbed too)."
                    if found
                    else "No memory holds every word of this query; nothing would go."
                ),
            }
        report = self.mem.forget(list(ids), query=query)
        return {"dry_run": False, "forgotten": report.to_dict()}

    def list(self, kind: str | None, limit: int) -> dict[str, Any]:
        return {"memories": [record(m) for m in self.mem.list(kind=kind, limit=limit)]}

    def show(self, memory_id: int) -> dict[str, Any]:
        detail = self.mem.show(memory_id)
        data = record(detail.memory)
        data["updated_at"] = detail.memory.updated_at
        data["profile"] = detail.memory.profile
        message = detail.source_message
        data["from_message"] = (
            None
            if message is None
            else {
                "id": message.id,
                "conversation": message.conversation,
                "role": message.role,
                "created_at": message.created_at,
                "content": message.content,
            }
        )
        data["history"] = [
            {"event": e.event, "at": e.at, "actor": e.actor, "detail": e.detail}
            for e in detail.history
        ]
        return data

    def context(self) -> dict[str, Any]:
        instructions = self.mem.list(kind="instruction")
        recent = self.mem.list(kind="fact", limit=CONTEXT_FACTS * 2)
        facts = [m for m in recent if m.source != "fact-key"][:CONTEXT_FACTS]
        return {
            "profile": self.mem.profile,
            "instructions": [record(m) for m in instructions],
            "facts": [record(m) for m in facts],
        }

    def add(self, paths: Sequence[str]) -> dict[str, Any]:
        if not self.shared_roots:
            raise UsageError(
                "This server shares no folder: start it with `mem mcp --share DIR` to let "
                "clients add files under DIR."
            )
        if not paths:
            raise UsageError("No paths given: pass files or folders under a shared folder.")
        chosen = [self._shared(p) for p in paths]
        report = self.mem.add(chosen)
        data = report.to_dict()
        data.pop("changes", None)
        return data

    def _shared(self, path: str) -> str:
        """``path`` resolved (links followed), if it lies under a shared root."""
        resolved = Path(os.path.expanduser(path)).resolve()
        for root in self.shared_roots:
            if resolved == root or resolved.is_relative_to(root):
                return str(resolved)
        roots = ", ".join(str(r) for r in self.shared_roots)
        raise UsageError(f"{path} is not under a shared folder ({roots}): pick a file under one.")


def as_markdown(items: Sequence[dict[str, Any]], empty: str) -> str:
    """A resource's text: one memory a line, with its id and date."""
    if not items:
        return empty + "\n"
    return "".join(f"- #{m['id']} ({m['created_at'][:10]}): {m['content']}\n" for m in items)
