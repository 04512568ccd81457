"""Export as JSON Lines: every stored field of this profile's conversations,
messages, memories and indexed files (``mem add``), so that import rebuilds the
same records (ids aside).

Database ids do not travel: a message is named by its ``import_key``, so a
memory's ``source_message`` and a conversation's ``summary_upto`` name keys;
a memory's ``superseded_by`` names the ``id`` of another line of the file.
"""

from __future__ import annotations

import json
from typing import IO, TYPE_CHECKING

from memory.records import MEMORY_COLUMNS, memory_from_row

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
    row = store.conn.execute(
        "SELECT import_key FROM messages WHERE id = ? AND profile = ?", [message_id, store.profile]
    ).fetchone()
    return None if row is None else str(row[0])


def export(store: MemoryStore, out: IO[str]) -> dict[str, int]:
    """Write this profile's conversations, messages and memories as JSONL."""
    counts = {"conversations": 0, "messages": 0, "memories": 0}
    conn = store.conn
    for row in conn.execute(
        "SELECT id, title, created_at, summary, updated_at, summary_upto FROM conversations "
        "WHERE profile = ? ORDER BY rowid",
        [store.profile],
    ):
        record = {
            "type": "conversation",
            "id": row[0],
            "title": row[1],
            "created_at": row[2],
            "summary": row[3],
            "updated_at": row[4],
            "summary_upto": _message_key(store, row[5]),
        }
        out.write(json.dumps(record) + "\n")
        counts["conversations"] += 1
    for row in conn.execute(
        "SELECT conversation_id, role, speaker, content, created_at, external_id, import_key, "
        "metadata FROM messages WHERE profile = ? ORDER BY id",
        [store.profile],
    ):
        record = {
            "type": "message",
            "conversation": row[0],
            "role": row[1],
            "speaker": row[2],
            "content": row[3],
            "timestamp": row[4],
            "id": row[5],
            "import_key": row[6],
            "metadata": json.loads(row[7] or "{}"),
        }
        out.write(json.dumps(record) + "\n")
        counts["messages"] += 1
    for row in conn.execute(
        f"SELECT {MEMORY_COLUMNS} FROM memories WHERE profile = ? AND kind != 'message' "
        "ORDER BY id",
        [store.profile],
    ):
        memory = memory_from_row(row)
        data = memory.to_dict()
        data["type"] = "memory"
        key = _message_key(store, memory.source_message_id)
        if key is not None:
            data["source_message"] = key
        out.write(json.dumps(data) + "\n")
        counts["memories"] += 1
    for row in conn.execute(
        f"SELECT {', '.join(DOCUMENT_KEYS)} FROM documents WHERE profile = ? ORDER BY id",
        [store.profile],
    ):
        out.write(json.dumps({"type": "document", **dict(zip(DOCUMENT_KEYS, row, strict=True))}))
        out.write("\n")
    return counts
