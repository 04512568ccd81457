"""Export and import as JSON Lines.

Import accepts mem's own export (lines with a ``type``) and plain message
lines ``{"conversation", "role", "speaker", "content", "timestamp", "id"}``.
The whole file is validated first and written in one transaction, so a bad
line 9,000 leaves the database exactly as it was; every message carries an
``import_key`` so importing the same file twice adds nothing. Every field that
:mod:`memory.lifecycle.transfer_export` writes is read back, so a round trip is lossless
(ids aside); the checks before writing are in :mod:`memory.lifecycle.transfer_import`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from memory import timeutil
from memory.errors import UsageError
from memory.lifecycle.transfer_export import export as export
from memory.lifecycle.transfer_import import MAX_LINE_BYTES as MAX_LINE_BYTES
from memory.lifecycle.transfer_import import (
    bad_line,
    check_conflict_policy,
    conversation_record,
    document_record,
    memory_record,
    message_record,
    resolve_messages,
)
from memory.lifecycle.transfer_import import parse_lines as parse_lines
from memory.storage.sqlite.db import transaction

if TYPE_CHECKING:
    from memory.store import MemoryStore

Progress = Callable[[int, int], None]
EMBED_BATCH = 256


@dataclass
class ImportReport:
    messages_added: int = 0
    messages_skipped: int = 0
    messages_replaced: int = 0
    memories_added: int = 0
    memories_skipped: int = 0
    documents_added: int = 0
    conversations: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages_added": self.messages_added,
            "messages_skipped": self.messages_skipped,
            "messages_replaced": self.messages_replaced,
            "memories_added": self.memories_added,
            "memories_skipped": self.memories_skipped,
            "documents_added": self.documents_added,
            "conversations": self.conversations,
        }


@dataclass
class _Memories:
    """What the memory lines of one file matched or added so far."""

    line_ids: dict[int | str, int] = field(default_factory=dict)  # a line's "id" -> id here
    links: list[tuple[int, int | str]] = field(default_factory=list)  # (id, "superseded_by")
    claimed: set[int] = field(default_factory=set)  # each stored memory matches one line
    seen: dict[tuple[Any, ...], int] = field(default_factory=dict)  # a repeated line -> id


def import_lines(
    store: MemoryStore,
    lines: Iterable[bytes | str],
    *,
    name: str = "<stdin>",
    progress: Progress | None = None,
    on_conflict: str = "error",
    max_line_bytes: int = MAX_LINE_BYTES,
) -> ImportReport:
    check_conflict_policy(on_conflict)
    records: list[tuple[str, dict[str, Any]]] = []
    for lineno, obj in parse_lines(lines, name, max_line_bytes):
        kind = obj.get("type", "message")
        if kind == "conversation":
            records.append(("conversation", conversation_record(store, obj, name, lineno)))
        elif kind == "message":
            records.append(("message", message_record(store, obj, name, lineno)))
        elif kind == "memory":
            records.append(("memory", memory_record(store, obj, name, lineno)))
        elif kind == "document":
            records.append(("document", document_record(store, obj, name, lineno)))
        else:
            raise bad_line(name, lineno, f"unknown line type {kind!r}")
    return _write(store, records, progress, name=name, on_conflict=on_conflict)


def import_file(
    store: MemoryStore,
    source: str | os.PathLike[str] | IO[bytes],
    *,
    progress: Progress | None = None,
    on_conflict: str = "error",
    max_line_bytes: int | None = None,
) -> ImportReport:
    """Import a JSONL file (a path, or an open binary file such as stdin's);
    ``on_conflict`` (error, skip, replace) for messages sharing an id."""
    opts: dict[str, Any] = {
        "progress": progress,
        "on_conflict": on_conflict,
        "max_line_bytes": max_line_bytes or MAX_LINE_BYTES,
    }
    if not isinstance(source, str | os.PathLike):
        return import_lines(store, source, name="<stdin>", **opts)
    name = str(source)
    try:
        with open(name, "rb") as handle:
            return import_lines(store, handle, name=name, **opts)
    except FileNotFoundError:
        raise UsageError(f"No such file: {name}; check the path.") from None
    except IsADirectoryError:
        raise UsageError(f"{name} is a folder: give a .jsonl file.") from None


def _write(
    store: MemoryStore,
    records: list[tuple[str, dict[str, Any]]],
    progress: Progress | None,
    *,
    name: str,
    on_conflict: str,
) -> ImportReport:
    report = ImportReport()
    total = len(records)
    conn = store.conn
    existing_keys = {
        r[0]
        for r in conn.execute(
            "SELECT import_key FROM messages WHERE import_key IS NOT NULL AND profile = ?",
            [store.profile],
        )
    }
    for rtype, rec in records:  # ids and keys of other profiles are not this one's
        if rtype == "message":
            rec["conversation"] = store.conversation_id_for(rec["conversation"])
            rec["key"] = store.import_key_for(rec["key"])
        elif rtype == "conversation":
            rec["id"] = store.conversation_id_for(rec["id"])
            if rec.get("summary_upto"):
                rec["summary_upto"] = store.import_key_for(rec["summary_upto"])
        elif rtype == "memory" and rec.get("conversation") is not None:
            rec["conversation"] = store.conversation_id_for(rec["conversation"])
    pending, report.messages_skipped, report.messages_replaced = resolve_messages(
        store, records, existing_keys, name=name, on_conflict=on_conflict
    )
    texts = [rec["content"] for rtype, rec in pending if rtype in ("message", "memory")]
    vectors: list[list[float]] = []
    for start in range(0, len(texts), EMBED_BATCH):
        vectors += store.embedder.embed(texts[start : start + EMBED_BATCH])
    vec_iter = iter(vectors)
    done = total - len(pending)
    memories = _Memories()
    summaries: list[tuple[str, str]] = []  # (conversation, key of its summary_upto message)
    with transaction(conn):
        for rtype, rec in pending:
            if rtype == "conversation":
                _ensure_conversation(store, rec["id"], rec.get("created_at"), rec.get("title"))
                if _restore_conversation(store, rec) and rec["summary_upto"]:
                    summaries.append((rec["id"], rec["summary_upto"]))
            elif rtype == "message":
                conv = rec["conversation"]
                if conv not in report.conversations:
                    _ensure_conversation(store, conv, rec["timestamp"], None)
                    report.conversations.append(conv)
                vector = next(vec_iter)
                if rec.get("replace") is not None:
                    _replace_message(store, rec, vector)
                else:
                    store.log_message(
                        conv,
                        rec["role"],
                        rec["content"],
                        speaker=rec["speaker"],
                        created_at=rec["timestamp"],
                        external_id=rec["id"],
                        import_key=rec["key"],
                        vector=vector,
                        metadata=rec["metadata"],
                    )
                    report.messages_added += 1
            elif rtype == "document":
                report.documents_added += _write_document(store, rec)
            else:
                _write_memory(store, rec, next(vec_iter), report, memories)
            done += 1
            if progress and (done % 100 == 0 or done == total):
                progress(done, total)
        for memory_id, target in memories.links:
            if memories.line_ids.get(target, memory_id) != memory_id:  # known, and not itself
                conn.execute(
                    "UPDATE memories SET superseded_by = ? WHERE id = ? AND superseded_by IS NULL",
                    [memories.line_ids[target], memory_id],
                )
        for conv, key in summaries:
            row = conn.execute(
                "SELECT id FROM messages WHERE import_key = ? AND profile = ?", [key, store.profile]
            ).fetchone()
            if row is not None:
                conn.execute(
                    "UPDATE conversations SET summary_upto = ? WHERE id = ? AND profile = ?",
                    [row[0], conv, store.profile],
                )
    if progress:
        progress(total, total)
    return report


def _write_memory(
    store: MemoryStore,
    rec: dict[str, Any],
    vector: list[float],
    report: ImportReport,
    memories: _Memories,
) -> None:
    """One memory line: skipped when it repeats an earlier line of the file, or
    when this profile holds the same text (and time, when the line has one)
    that no other line matched; otherwise added with every field of the line.
    Two memories with equal text (export lines with two ids) stay two."""
    conn = store.conn
    line = (rec["kind"], rec["content"], rec["created_at"], rec["line_id"])
    dup: int | None = memories.seen.get(line)
    if dup is None:
        sql = "SELECT id FROM memories WHERE profile = ? AND kind = ? AND content = ?"
        params: list[Any] = [store.profile, rec["kind"], rec["content"]]
        if rec["created_at"] is not None:
            sql += " AND created_at = ?"
            params.append(rec["created_at"])
        rows = conn.execute(sql + " ORDER BY id", params)
        dup = next((int(r[0]) for r in rows if r[0] not in memories.claimed), None)
    if dup is not None:
        memories.claimed.add(dup)
        memories.seen[line] = dup
        report.memories_skipped += 1
        if rec["line_id"] is not None:
            memories.line_ids.setdefault(rec["line_id"], dup)
        return
    source_message = None
    if rec["source_message"]:
        source_message = store.message_id_for(rec["source_message"])
    if rec["conversation"] is not None:
        _ensure_conversation(store, rec["conversation"], rec["created_at"], None)
    mid = store.add_memory(
        rec["content"],
        kind=rec["kind"],
        source=rec["source"],
        importance=rec["importance"],
        confidence=rec["confidence"],
        created_at=rec["created_at"],
        metadata=rec["metadata"],
        stored_vector=vector,  # the line was gated when read: no embedding under the lock
        source_message_id=source_message,
        conversation=rec["conversation"],
        external_id=rec["external_id"],
        speaker=rec["speaker"],
        actor="import",
    )
    valid_until = rec["valid_until"]
    if valid_until is None and rec["superseded_by"] is not None:
        valid_until = timeutil.now_iso()  # superseded by a memory the file may not hold
    conn.execute(
        "UPDATE memories SET updated_at = coalesce(?, updated_at), last_used_at = ?, "
        "use_count = ?, valid_from = coalesce(?, valid_from), valid_until = ?, expires_at = ? "
        "WHERE id = ?",
        [
            rec["updated_at"],
            rec["last_used_at"],
            rec["use_count"],
            rec["valid_from"],
            valid_until,
            rec["expires_at"],
            mid,
        ],
    )
    memories.claimed.add(mid)
    memories.seen[line] = mid
    if rec["line_id"] is not None:
        memories.line_ids.setdefault(rec["line_id"], mid)
    if rec["superseded_by"] is not None:
        memories.links.append((mid, rec["superseded_by"]))
    report.memories_added += 1


def _write_document(store: MemoryStore, rec: dict[str, Any]) -> int:
    """A ``documents`` row for this profile, unless the file is indexed here already."""
    keys = ("path", "format", "hash", "size", "mtime", "chunks", "chunker", "added_at")
    cur = store.conn.execute(
        f"INSERT INTO documents(profile, {', '.join(keys)}, updated_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(profile, path) DO NOTHING",
        [store.profile, *(rec[k] for k in keys), rec["updated_at"]],
    )
    return int(cur.rowcount > 0)


def _restore_conversation(store: MemoryStore, rec: dict[str, Any]) -> bool:
    """Title, summary and last update of a conversation line, where the stored
    conversation has none yet; True when the summary was set."""
    store.conn.execute(
        "UPDATE conversations SET title = coalesce(title, ?), "
        "updated_at = max(updated_at, coalesce(?, updated_at)) WHERE id = ? AND profile = ?",
        [rec["title"], rec["updated_at"], rec["id"], store.profile],
    )
    if rec["summary"] is None:
        return False
    cur = store.conn.execute(
        "UPDATE conversations SET summary = ? WHERE id = ? AND profile = ? AND summary IS NULL",
        [rec["summary"], rec["id"], store.profile],
    )
    return bool(cur.rowcount > 0)


def _replace_message(store: MemoryStore, rec: dict[str, Any], vector: list[float]) -> None:
    """``--on-conflict replace``: the stored message takes the line's text, and
    its search entry is rebuilt (the old text leaves the index)."""
    conn, message_id = store.conn, rec["replace"]
    conn.execute(
        "UPDATE messages SET role = ?, speaker = ?, content = ?, "
        "created_at = coalesce(?, created_at), metadata = ? WHERE id = ? AND profile = ?",
        [
            rec["role"],
            rec["speaker"],
            rec["content"],
            rec["timestamp"],
            json.dumps(rec["metadata"]),
            message_id,
            store.profile,
        ],
    )
    old = conn.execute(
        "SELECT id FROM memories WHERE source_message_id = ? AND kind = 'message' AND profile = ?",
        [message_id, store.profile],
    ).fetchone()
    if old is not None:
        store.delete_row(
            int(old[0]),
            detail={"kind": "message", "source": "import", "reason": "replaced by import"},
            actor="import",
        )
    stamp = conn.execute("SELECT created_at FROM messages WHERE id = ?", [message_id]).fetchone()
    if rec["content"].strip():
        store.add_memory(
            rec["content"],
            kind="message",
            source=f"message:{rec['role']}",
            source_message_id=message_id,
            conversation=rec["conversation"],
            external_id=rec["id"],
            speaker=rec["speaker"] or rec["role"],
            created_at=stamp[0],
            vector=vector,
            audit=False,
        )


def _ensure_conversation(
    store: MemoryStore, cid: str, created_at: str | None, title: str | None
) -> None:
    row = store.conn.execute("SELECT profile FROM conversations WHERE id = ?", [cid]).fetchone()
    if row is None:
        store.new_conversation(title, conversation_id=cid, created_at=created_at)
    elif row[0] != store.profile:
        raise UsageError(  # never reached after conversation_id_for; names no profile
            f"Conversation {cid!r} is not in profile {store.profile!r}: rename it in the file."
        )
