"""Export and import as JSON Lines.

Import accepts mem's own export (lines with a ``type``) and plain message
lines ``{"conversation", "role", "speaker", "content", "timestamp", "id"}``.
The whole file is validated first and written in one transaction, so a bad
line 9,000 leaves the database exactly as it was; every message carries an
``import_key`` so importing the same file twice adds nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from . import timeutil
from .db import transaction
from .errors import ImportFormatError, UsageError
from .models import KINDS, MEMORY_COLUMNS, memory_from_row

if TYPE_CHECKING:
    from .store import MemoryStore

Progress = Callable[[int, int], None]
EMBED_BATCH = 256


@dataclass
class ImportReport:
    messages_added: int = 0
    messages_skipped: int = 0
    memories_added: int = 0
    memories_skipped: int = 0
    conversations: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages_added": self.messages_added,
            "messages_skipped": self.messages_skipped,
            "memories_added": self.memories_added,
            "memories_skipped": self.memories_skipped,
            "conversations": self.conversations,
        }


def _bad(name: str, lineno: int, why: str) -> ImportFormatError:
    return ImportFormatError(
        f"{name}:{lineno}: {why}; fix or remove that line (nothing was imported)."
    )


def _text(value: Any, key: str, name: str, lineno: int, *, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise _bad(name, lineno, f'missing "{key}"')
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _bad(name, lineno, f'"{key}" must be a string')
    if "\x00" in value:
        raise _bad(name, lineno, f'"{key}" contains a NUL byte')
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape such as "\ud800"
        raise _bad(name, lineno, f'"{key}" is not valid Unicode (a lone \\u surrogate)') from None
    return value


def _stamp(value: Any, name: str, lineno: int) -> str | None:
    text = _text(value, "timestamp", name, lineno, required=False)
    if text is None or text == "":
        return None
    try:
        return timeutil.normalise_timestamp(text)
    except (ValueError, OverflowError):
        raise _bad(name, lineno, f"timestamp {text!r} is not an ISO 8601 date") from None


def parse_lines(lines: Iterable[bytes | str], name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Decode and JSON-parse each non-blank line, naming the line on failure."""
    for lineno, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise _bad(name, lineno, "not valid UTF-8") from None
        else:
            line = raw
        if lineno == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark from Windows tools
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise _bad(name, lineno, f"not valid JSON ({err.msg})") from None
        except (ValueError, RecursionError):  # a number too long, nesting too deep
            raise _bad(
                name, lineno, "not valid JSON (a number too long or nesting too deep)"
            ) from None
        if not isinstance(obj, dict):
            raise _bad(name, lineno, "not a JSON object")
        yield lineno, obj


def _message_key(conv: str, ext: str | None, role: str, stamp: str | None, content: str) -> str:
    if ext:
        return f"{conv}\x1f{ext}"
    digest = hashlib.sha256(f"{conv}\x1f{role}\x1f{stamp}\x1f{content}".encode()).hexdigest()
    return f"{conv}\x1f#{digest[:32]}"


def import_lines(
    store: MemoryStore,
    lines: Iterable[bytes | str],
    *,
    name: str = "<stdin>",
    progress: Progress | None = None,
) -> ImportReport:
    records: list[tuple[str, dict[str, Any]]] = []
    for lineno, obj in parse_lines(lines, name):
        kind = obj.get("type", "message")
        if kind == "conversation":
            cid = _text(obj.get("id"), "id", name, lineno)
            assert cid is not None
            if not cid.strip():
                raise _bad(name, lineno, '"id" is empty')
            records.append(
                (
                    "conversation",
                    {
                        "id": cid,
                        "title": _text(obj.get("title"), "title", name, lineno, required=False),
                        "created_at": _stamp(obj.get("created_at"), name, lineno),
                    },
                )
            )
        elif kind == "message":
            conv = _text(obj.get("conversation"), "conversation", name, lineno)
            role = _text(obj.get("role"), "role", name, lineno)
            content = _text(obj.get("content"), "content", name, lineno)
            assert conv is not None and role is not None and content is not None
            if not conv.strip():
                raise _bad(name, lineno, '"conversation" is empty')
            stamp = _stamp(obj.get("timestamp"), name, lineno)
            ext = _text(obj.get("id"), "id", name, lineno, required=False)
            records.append(
                (
                    "message",
                    {
                        "conversation": conv,
                        "role": role,
                        "content": content,
                        "speaker": _text(
                            obj.get("speaker"), "speaker", name, lineno, required=False
                        ),
                        "timestamp": stamp,
                        "id": ext,
                        "key": _text(
                            obj.get("import_key"), "import_key", name, lineno, required=False
                        )
                        or _message_key(conv, ext, role, stamp, content),
                    },
                )
            )
        elif kind == "memory":
            content = _text(obj.get("content"), "content", name, lineno)
            mkind = obj.get("kind", "fact")
            if mkind not in KINDS or mkind == "message":
                raise _bad(name, lineno, f"unknown memory kind {mkind!r}")
            assert content is not None
            records.append(
                (
                    "memory",
                    {
                        "content": content,
                        "kind": mkind,
                        "created_at": _stamp(obj.get("created_at"), name, lineno),
                        "importance": _number(
                            obj.get("importance", 0.5), "importance", name, lineno
                        ),
                        "confidence": _number(
                            obj.get("confidence", 1.0), "confidence", name, lineno
                        ),
                        "source": _text(obj.get("source"), "source", name, lineno, required=False)
                        or "import",
                        "metadata": obj.get("metadata")
                        if isinstance(obj.get("metadata"), dict)
                        else {},
                        "source_message": _text(
                            obj.get("source_message"),
                            "source_message",
                            name,
                            lineno,
                            required=False,
                        ),
                        "superseded": bool(obj.get("superseded_by"))
                        or bool(obj.get("valid_until")),
                    },
                )
            )
        else:
            raise _bad(name, lineno, f"unknown line type {kind!r}")
    return _write(store, records, progress)


def _number(value: Any, key: str, name: str, lineno: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise _bad(name, lineno, f'"{key}" must be a number from 0 to 1')
    return float(value)


def _write(
    store: MemoryStore, records: list[tuple[str, dict[str, Any]]], progress: Progress | None
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
    pending: list[tuple[str, dict[str, Any]]] = []
    for rtype, rec in records:
        if rtype == "message":  # ids and keys of other profiles are not this one's
            rec["conversation"] = store.conversation_id_for(rec["conversation"])
            rec["key"] = store.import_key_for(rec["key"])
        elif rtype == "conversation":
            rec["id"] = store.conversation_id_for(rec["id"])
        if rtype == "message" and rec["key"] in existing_keys:
            report.messages_skipped += 1
            continue
        if rtype == "message":
            existing_keys.add(rec["key"])
        pending.append((rtype, rec))
    texts = [rec["content"] for rtype, rec in pending if rtype in ("message", "memory")]
    vectors: list[list[float]] = []
    for start in range(0, len(texts), EMBED_BATCH):
        vectors += store.embedder.embed(texts[start : start + EMBED_BATCH])
    vec_iter = iter(vectors)
    done = total - len(pending)
    with transaction(conn):
        for rtype, rec in pending:
            if rtype == "conversation":
                _ensure_conversation(store, rec["id"], rec.get("created_at"), rec.get("title"))
            elif rtype == "message":
                conv = rec["conversation"]
                if conv not in report.conversations:
                    _ensure_conversation(store, conv, rec["timestamp"], None)
                    report.conversations.append(conv)
                vector = next(vec_iter)
                store.log_message(
                    conv,
                    rec["role"],
                    rec["content"],
                    speaker=rec["speaker"],
                    created_at=rec["timestamp"],
                    external_id=rec["id"],
                    import_key=rec["key"],
                    vector=vector,
                )
                report.messages_added += 1
            else:
                vector = next(vec_iter)
                dup = conn.execute(
                    "SELECT 1 FROM memories WHERE profile = ? AND kind = ? AND content = ? "
                    "AND created_at IS ?",
                    [store.profile, rec["kind"], rec["content"].strip(), rec["created_at"]],
                ).fetchone()
                if dup:
                    report.memories_skipped += 1
                else:
                    source_message = None
                    if rec["source_message"]:
                        source_message = store.message_id_for(rec["source_message"])
                    mid = store.add_memory(
                        rec["content"],
                        kind=rec["kind"],
                        source=rec["source"],
                        importance=rec["importance"],
                        confidence=rec["confidence"],
                        created_at=rec["created_at"],
                        metadata=rec["metadata"],
                        vector=vector,
                        source_message_id=source_message,
                        actor="import",
                    )
                    if rec["superseded"]:
                        conn.execute(
                            "UPDATE memories SET valid_until = ? WHERE id = ?",
                            [timeutil.now_iso(), mid],
                        )
                    report.memories_added += 1
            done += 1
            if progress and (done % 100 == 0 or done == total):
                progress(done, total)
    if progress:
        progress(total, total)
    return report


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


def export(store: MemoryStore, out: IO[str]) -> dict[str, int]:
    """Write this profile's conversations, messages and memories as JSONL."""
    counts = {"conversations": 0, "messages": 0, "memories": 0}
    conn = store.conn
    for row in conn.execute(
        "SELECT id, title, created_at, summary FROM conversations WHERE profile = ? ORDER BY rowid",
        [store.profile],
    ):
        out.write(
            json.dumps(
                {
                    "type": "conversation",
                    "id": row[0],
                    "title": row[1],
                    "created_at": row[2],
                    "summary": row[3],
                }
            )
            + "\n"
        )
        counts["conversations"] += 1
    for row in conn.execute(
        "SELECT conversation_id, role, speaker, content, created_at, external_id, import_key, id "
        "FROM messages WHERE profile = ? ORDER BY id",
        [store.profile],
    ):
        out.write(
            json.dumps(
                {
                    "type": "message",
                    "conversation": row[0],
                    "role": row[1],
                    "speaker": row[2],
                    "content": row[3],
                    "timestamp": row[4],
                    "id": row[5],
                    "import_key": row[6],
                }
            )
            + "\n"
        )
        counts["messages"] += 1
    for row in conn.execute(
        f"SELECT {MEMORY_COLUMNS} FROM memories WHERE profile = ? AND kind != 'message' "
        "ORDER BY id",
        [store.profile],
    ):
        memory = memory_from_row(row)
        data = memory.to_dict()
        data["type"] = "memory"
        if memory.source_message_id is not None:
            key_row = conn.execute(
                "SELECT import_key FROM messages WHERE id = ? AND profile = ?",
                [memory.source_message_id, store.profile],
            ).fetchone()
            if key_row:
                data["source_message"] = key_row[0]
        out.write(json.dumps(data) + "\n")
        counts["memories"] += 1
    return counts
