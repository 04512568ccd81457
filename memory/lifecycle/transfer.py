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
from memory.storage import Document, NewMemory, NewMessage
from memory.storage.transfer import MemoryTimes

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
    backend, scope = store.backend, store.scope
    existing_keys = backend.import_keys(scope)
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
    batch = _Batch(store)
    with backend.transaction(scope):
        for rtype, rec in pending:
            if rtype != "message" or rec.get("replace") is not None:
                batch.flush()  # later lines may name these messages
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
                    batch.add(rec, vector)
                    report.messages_added += 1
            elif rtype == "document":
                report.documents_added += _write_document(store, rec)
            else:
                _write_memory(store, rec, next(vec_iter), report, memories)
            done += 1
            if progress and (done % 100 == 0 or done == total):
                progress(done, total)
        batch.flush()
        for memory_id, target in memories.links:
            if memories.line_ids.get(target, memory_id) != memory_id:  # known, and not itself
                backend.link_superseded(scope, memory_id, memories.line_ids[target])
        for conv, key in summaries:
            upto = backend.message_by_key(scope, key)
            if upto is not None:
                backend.restore_conversation(scope, conv, summary_upto=upto.id)
    if progress:
        progress(total, total)
    return report


class _Batch:
    """Message lines written together (``add_messages``: one round trip per
    batch on a server), as ``log_message`` writes each: the message, and its
    text indexed as a memory of kind message."""

    SIZE = 1_000

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.rows: list[tuple[NewMessage, NewMemory | None, list[float]]] = []

    def add(self, rec: dict[str, Any], vector: list[float]) -> None:
        stamp = rec["timestamp"] or timeutil.now_iso()
        message = NewMessage(
            rec["conversation"],
            rec["role"],
            rec["content"],
            created_at=stamp,
            speaker=rec["speaker"],
            external_id=rec["id"],
            import_key=rec["key"],
            metadata=rec["metadata"] or {},
        )
        memory = None
        if rec["content"].strip():
            memory = NewMemory(
                rec["content"].strip(),
                kind="message",
                source=f"message:{rec['role']}",
                created_at=stamp,
                conversation=rec["conversation"],
                external_id=rec["id"],
                speaker=rec["speaker"] or rec["role"],
            )
        self.rows.append((message, memory, vector))
        if len(self.rows) >= self.SIZE:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.store._check_embedder(self.store.scope)  # a reindex meanwhile: refused
            self.store.backend.add_messages(self.store.scope, self.rows)
            self.rows = []


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
    line = (rec["kind"], rec["content"], rec["created_at"], rec["line_id"])
    dup: int | None = memories.seen.get(line)
    if dup is None:
        rows = store.backend.find_memories(
            store.scope, kind=rec["kind"], content=rec["content"], created_at=rec["created_at"]
        )
        dup = next((i for i in rows if i not in memories.claimed), None)
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
    times = MemoryTimes(
        updated_at=rec["updated_at"],
        last_used_at=rec["last_used_at"],
        use_count=rec["use_count"],
        valid_from=rec["valid_from"],
        valid_until=valid_until,
        expires_at=rec["expires_at"],
    )
    store.backend.restore_times(store.scope, mid, times)
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
    document = Document(
        **{k: rec[k] for k in keys}, profile=store.profile, updated_at=rec["updated_at"]
    )
    return int(store.backend.import_document(store.scope, document))


def _restore_conversation(store: MemoryStore, rec: dict[str, Any]) -> bool:
    """Title, summary and last update of a conversation line, where the stored
    conversation has none yet; True when the summary was set."""
    return store.backend.restore_conversation(
        store.scope,
        rec["id"],
        title=rec["title"],
        updated_at=rec["updated_at"],
        summary=rec["summary"],
    )


def _replace_message(store: MemoryStore, rec: dict[str, Any], vector: list[float]) -> None:
    """``--on-conflict replace``: the stored message takes the line's text, and
    its search entry is rebuilt (the old text leaves the index)."""
    message = NewMessage(
        rec["conversation"],
        rec["role"],
        rec["content"],
        created_at=rec["timestamp"] or "",
        speaker=rec["speaker"],
        metadata=rec["metadata"],
    )
    stamp = store.backend.replace_message(
        store.scope, rec["replace"], message, reason="replaced by import", actor="import"
    )
    if rec["content"].strip():
        store.add_memory(
            rec["content"],
            kind="message",
            source=f"message:{rec['role']}",
            source_message_id=rec["replace"],
            conversation=rec["conversation"],
            external_id=rec["id"],
            speaker=rec["speaker"] or rec["role"],
            created_at=stamp,
            vector=vector,
            audit=False,
        )


def _ensure_conversation(
    store: MemoryStore, cid: str, created_at: str | None, title: str | None
) -> None:
    """This profile's conversation ``cid``, made when missing (another
    profile's id never reaches here: see ``conversation_id_for``)."""
    if not store.conversation_exists(cid):
        store.new_conversation(title, conversation_id=cid, created_at=created_at)
