"""Export as JSON Lines: every stored field of this profile's conversations,
messages, memories and indexed files (``mem add``), so that import rebuilds the
same records (ids aside).

Database ids do not travel: a message is named by its ``import_key``, so a
memory's ``source_message`` and a conversation's ``summary_upto`` name keys;
a memory's ``superseded_by`` names the ``id`` of another line of the file.
"""

from __future__ import annotations

import json
from typing import IO, TYPE_CHECKING, Any

from memory.storage import MemoryFilter

if TYPE_CHECKING:
    from memory.store import MemoryStore


DOCUMENT_KEYS = (
    "path",
    "format",
    "hash",
    "size",
    "mtime",
    "chunks",
    "chunker",
    "added_at",
    "updated_at",
)


def _message_key(store: MemoryStore, message_id: int | None) -> str | None:
    if message_id is None:
        return None
    return store.backend.import_key(store.scope, message_id)


def export(store: MemoryStore, out: IO[str]) -> dict[str, int]:
    """Write this profile's conversations, messages and memories as JSONL."""
    counts = {"conversations": 0, "messages": 0, "memories": 0}
    backend, scope = store.backend, store.scope
    record: dict[str, Any]
    for conv in backend.iter_conversations(scope):
        record = {
            "type": "conversation",
            "id": conv.id,
            "title": conv.title,
            "created_at": conv.created_at,
            "summary": conv.summary,
            "updated_at": conv.updated_at,
            "summary_upto": _message_key(store, conv.summary_upto),
        }
        out.write(json.dumps(record) + "\n")
        counts["conversations"] += 1
    for msg in backend.iter_messages(scope):
        record = {
            "type": "message",
            "conversation": msg.conversation,
            "role": msg.role,
            "speaker": msg.speaker,
            "content": msg.content,
            "timestamp": msg.created_at,
            "id": msg.external_id,
            "import_key": msg.import_key,
            "metadata": msg.metadata,
        }
        out.write(json.dumps(record) + "\n")
        counts["messages"] += 1
    every = MemoryFilter(include_inactive=True, exclude_kinds=("message",))
    for memory in backend.iter_memories(scope, every):
        data = memory.to_dict()
        data["type"] = "memory"
        key = _message_key(store, memory.source_message_id)
        if key is not None:
            data["source_message"] = key
        out.write(json.dumps(data) + "\n")
        counts["memories"] += 1
    for doc in backend.iter_documents(scope):
        row = doc.to_dict()
        out.write(json.dumps({"type": "document", **{k: row[k] for k in DOCUMENT_KEYS}}))
        out.write("\n")
    return counts
