"""What import reads and checks before it writes: bounded lines, one record per
line with every field validated, the secret gate over every stored string, and
messages that share an external id.

Kept apart from :mod:`memory.lifecycle.transfer` (which writes) so that each stays
short; nothing here writes to the database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from memory import timeutil
from memory.errors import ImportFormatError, SecretRefusedError, UsageError
from memory.privacy import secrets_gate
from memory.records import KINDS

if TYPE_CHECKING:
    from memory.store import MemoryStore

# One line of an import file, in bytes. An export line holds one message or
# memory; 16 MB is far above any real one, and low enough that `mem import
# /dev/zero` fails at once instead of exhausting memory.
MAX_LINE_BYTES = 16_000_000
CONFLICT_POLICIES = ("error", "skip", "replace")
MAX_DEPTH = 100  # levels of nesting in metadata; real metadata has two or three


def _size(limit: int) -> str:
    return f"{limit // 1_000_000} MB" if limit >= 1_000_000 else f"{max(limit // 1000, 1)} KB"


def bounded_lines(source: Iterable[bytes | str], name: str, limit: int) -> Iterator[bytes | str]:
    """The lines of ``source``, none longer than ``limit`` bytes (or characters).

    A binary file is read with ``readline(limit + 1)``, so an endless line
    costs at most ``limit`` bytes before it is refused with its line number.
    """
    readline = getattr(source, "readline", None)
    lineno = 0

    def check(raw: bytes | str) -> bytes | str:
        end = raw[-1:] in (b"\n", "\n")
        if len(raw) - end > limit:
            raise ImportFormatError(
                f"{name}:{lineno}: the line is longer than {_size(limit)} (the limit for one "
                "line); split that record, or fix or remove that line (nothing was imported)."
            )
        return raw

    if readline is None:
        for lineno, raw in enumerate(source, start=1):  # noqa: B007 (check reads lineno)
            yield check(raw)
        return
    while True:
        raw = readline(limit + 1)
        if not raw:
            return
        lineno += 1
        yield check(raw)


def read_bounded(source: Iterable[bytes], name: str, limit: int = MAX_LINE_BYTES) -> bytes:
    """All of ``source`` (stdin read twice by ``--extract``), each line bounded."""
    return b"".join(line for line in bounded_lines(source, name, limit) if isinstance(line, bytes))


def check_conflict_policy(policy: str) -> None:
    if policy not in CONFLICT_POLICIES:
        raise UsageError(f"Unknown --on-conflict {policy!r}: use error, skip or replace.")


# ----------------------------------------------------------------- the gate
def _gate_keys(node: Any, policy: str) -> list[str]:
    """Gate the keys of every object under ``node`` in place (values went
    through :func:`secrets_gate.apply_record`); a loop, not recursion."""
    findings: list[str] = []
    todo = [node]
    while todo:
        value = todo.pop()
        if isinstance(value, list):
            todo += value
        elif isinstance(value, dict):
            items = []
            for k, v in value.items():
                result = secrets_gate.apply(k, policy)
                findings.extend(result.findings)
                items.append((result.text, v))
            value.clear()
            value.update(items)
            todo += list(value.values())
    return findings


def gate_record(record: dict[str, Any], keys: Iterable[str], policy: str, where: str) -> list[str]:
    """Pass the ``keys`` of ``record`` (strings, nested lists and dicts, their
    keys too) through the secret gate's whole-record entry point, in place;
    returns the kinds of secret found, in order. A refusal names the line."""
    part = {key: record[key] for key in keys if key in record}
    try:
        result = secrets_gate.apply_record(part, policy)
        gated = dict(result.record)
        findings = list(result.findings) + _gate_keys(gated, policy)
    except SecretRefusedError as err:
        raise SecretRefusedError(f"{where}: {err} (nothing was imported)") from None
    record.update(gated)
    return list(dict.fromkeys(findings))


# ----------------------------------------------------------------- records
def bad_line(name: str, lineno: int, why: str) -> ImportFormatError:
    return ImportFormatError(
        f"{name}:{lineno}: {why}; fix or remove that line (nothing was imported)."
    )


def _text(value: Any, key: str, name: str, lineno: int, *, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise bad_line(name, lineno, f'missing "{key}"')
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise bad_line(name, lineno, f'"{key}" must be a string')
    if "\x00" in value:
        raise bad_line(name, lineno, f'"{key}" contains a NUL byte')
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape such as "\ud800"
        raise bad_line(
            name, lineno, f'"{key}" is not valid Unicode (a lone \\u surrogate)'
        ) from None
    return value


def _stamp(value: Any, name: str, lineno: int, key: str = "timestamp") -> str | None:
    text = _text(value, key, name, lineno, required=False)
    if text is None or text == "":
        return None
    try:
        return timeutil.normalise_timestamp(text)
    except (ValueError, OverflowError):
        raise bad_line(name, lineno, f"{key} {text!r} is not an ISO 8601 date") from None


def parse_lines(
    lines: Iterable[bytes | str], name: str, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Decode and JSON-parse each non-blank line, naming the line on failure."""
    for lineno, raw in enumerate(bounded_lines(lines, name, max_line_bytes), start=1):
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise bad_line(name, lineno, "not valid UTF-8") from None
        else:
            line = raw
        if lineno == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark from Windows tools
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise bad_line(name, lineno, f"not valid JSON ({err.msg})") from None
        except (ValueError, RecursionError):  # a number too long, nesting too deep
            raise bad_line(
                name, lineno, "not valid JSON (a number too long or nesting too deep)"
            ) from None
        if not isinstance(obj, dict):
            raise bad_line(name, lineno, "not a JSON object")
        yield lineno, obj


def _message_key(conv: str, ext: str | None, role: str, stamp: str | None, content: str) -> str:
    if ext:
        return f"{conv}\x1f{ext}"
    digest = hashlib.sha256(f"{conv}\x1f{role}\x1f{stamp}\x1f{content}".encode()).hexdigest()
    return f"{conv}\x1f#{digest[:32]}"


def conversation_record(
    store: MemoryStore, obj: dict[str, Any], name: str, lineno: int
) -> dict[str, Any]:
    cid = _text(obj.get("id"), "id", name, lineno)
    assert cid is not None
    if not cid.strip():
        raise bad_line(name, lineno, '"id" is empty')
    rec = {
        "id": cid,
        "title": _text(obj.get("title"), "title", name, lineno, required=False),
        "summary": _text(obj.get("summary"), "summary", name, lineno, required=False),
        "summary_upto": _text(
            obj.get("summary_upto"), "summary_upto", name, lineno, required=False
        ),
        "created_at": _stamp(obj.get("created_at"), name, lineno, "created_at"),
        "updated_at": _stamp(obj.get("updated_at"), name, lineno, "updated_at"),
    }
    gate_record(rec, ("title", "summary"), store.secrets, f"{name}:{lineno}")
    return rec


def message_record(
    store: MemoryStore, obj: dict[str, Any], name: str, lineno: int
) -> dict[str, Any]:
    """A message line; its text and speaker are the raw log (kept as written,
    governed by retention), its metadata is gated like every stored string."""
    conv = _text(obj.get("conversation"), "conversation", name, lineno)
    role = _text(obj.get("role"), "role", name, lineno)
    content = _text(obj.get("content"), "content", name, lineno)
    assert conv is not None and role is not None and content is not None
    if not conv.strip():
        raise bad_line(name, lineno, '"conversation" is empty')
    stamp = _stamp(obj.get("timestamp"), name, lineno)
    ext = _text(obj.get("id"), "id", name, lineno, required=False)
    rec = {
        "conversation": conv,
        "role": role,
        "content": content,
        "speaker": _text(obj.get("speaker"), "speaker", name, lineno, required=False),
        "timestamp": stamp,
        "id": ext,
        "key": _text(obj.get("import_key"), "import_key", name, lineno, required=False)
        or _message_key(conv, ext, role, stamp, content),
        "metadata": _metadata(obj, name, lineno),
        "line": lineno,
    }
    gate_record(rec, ("metadata",), store.secrets, f"{name}:{lineno}")
    return rec


MEMORY_TIMES = ("updated_at", "last_used_at", "valid_from", "valid_until", "expires_at")


def memory_record(
    store: MemoryStore, obj: dict[str, Any], name: str, lineno: int
) -> dict[str, Any]:
    content = _text(obj.get("content"), "content", name, lineno)
    mkind = obj.get("kind", "fact")
    if mkind not in KINDS or mkind == "message":
        raise bad_line(name, lineno, f"unknown memory kind {mkind!r}")
    assert content is not None
    if not content.strip():
        raise bad_line(name, lineno, '"content" is empty')

    def text(key: str) -> str | None:
        return _text(obj.get(key), key, name, lineno, required=False) or None

    rec: dict[str, Any] = {
        "content": content.strip(),
        "kind": mkind,
        "created_at": _stamp(obj.get("created_at"), name, lineno, "created_at"),
        **{key: _stamp(obj.get(key), name, lineno, key) for key in MEMORY_TIMES},
        "importance": _number(obj.get("importance", 0.5), "importance", name, lineno),
        "confidence": _number(obj.get("confidence", 1.0), "confidence", name, lineno),
        "use_count": _whole(obj.get("use_count", 0), "use_count", name, lineno),
        "source": text("source") or "import",
        "speaker": text("speaker"),
        "external_id": text("external_id"),
        "conversation": text("conversation"),
        "metadata": _metadata(obj, name, lineno),
        "source_message": text("source_message"),
        "line_id": _ref(obj.get("id"), "id", name, lineno),
        "superseded_by": _ref(obj.get("superseded_by"), "superseded_by", name, lineno),
    }
    where = f"{name}:{lineno}"
    keys = ("content", "source", "speaker", "external_id", "metadata")
    if findings := gate_record(rec, keys, store.secrets, where):
        known = rec["metadata"].get("redacted")
        known = [f for f in known if isinstance(f, str)] if isinstance(known, list) else []
        rec["metadata"] = {**rec["metadata"], "redacted": list(dict.fromkeys(known + findings))}
    return rec


def document_record(
    store: MemoryStore, obj: dict[str, Any], name: str, lineno: int
) -> dict[str, Any]:
    """A file indexed with ``mem add`` (its chunks are memory lines): without it
    ``mem docs`` would not list the file and ``mem add`` would redo it."""
    rec: dict[str, Any] = {}
    for key in ("path", "format", "hash", "chunker"):
        rec[key] = _text(obj.get(key), key, name, lineno)
        if not rec[key].strip():
            raise bad_line(name, lineno, f'"{key}" is empty')
    for key in ("size", "chunks"):
        rec[key] = _whole(obj.get(key), key, name, lineno)
    mtime = obj.get("mtime")
    if isinstance(mtime, bool) or not isinstance(mtime, int | float) or not 0 <= mtime < 1e11:
        raise bad_line(name, lineno, '"mtime" must be a time in seconds since 1970')
    rec["mtime"] = float(mtime)
    now = timeutil.now_iso()
    for key in ("added_at", "updated_at"):
        rec[key] = _stamp(obj.get(key), name, lineno, key) or now
    gate_record(rec, ("path",), store.secrets, f"{name}:{lineno}")
    return rec


def _number(value: Any, key: str, name: str, lineno: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise bad_line(name, lineno, f'"{key}" must be a number from 0 to 1')
    return float(value)


def _whole(value: Any, key: str, name: str, lineno: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise bad_line(name, lineno, f'"{key}" must be a whole number from 0 to 2**63 - 1')
    return value


def _ref(value: Any, key: str, name: str, lineno: int) -> int | str | None:
    """A memory line's ``id`` or ``superseded_by``: names another line of the file."""
    if value is None or (isinstance(value, int | str) and not isinstance(value, bool)):
        return value
    raise bad_line(name, lineno, f'"{key}" must be a memory id (a number) or null')


def _metadata(obj: dict[str, Any], name: str, lineno: int) -> dict[str, Any]:
    value = obj.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_line(name, lineno, '"metadata" must be a JSON object')
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:  # storing and exporting nest by recursion: bound the depth here
        item, depth = todo.pop()
        if depth > MAX_DEPTH:
            raise bad_line(name, lineno, f'"metadata" nests deeper than {MAX_DEPTH} levels')
        children = item.values() if isinstance(item, dict) else item
        todo += [(c, depth + 1) for c in children if isinstance(c, dict | list)]
    return value


# ------------------------------------------------------------- conflicts
def _conflict(name: str, rec: dict[str, Any], how: str) -> ImportFormatError:
    what = (
        f"message id {rec['id']!r} of conversation {rec['conversation']!r}"
        if rec["id"]
        else f"message key {rec['key']!r}"
    )
    return ImportFormatError(
        f"{name}:{rec['line']}: {what} {how} with other text; give it another id, or import "
        "with --on-conflict skip or replace (nothing was imported)."
    )


def resolve_messages(
    store: MemoryStore,
    records: list[tuple[str, dict[str, Any]]],
    existing_keys: set[str],
    *,
    name: str,
    on_conflict: str,
) -> tuple[list[tuple[str, dict[str, Any]]], int, int]:
    """Records to write, with messages that share a key resolved: same text is
    skipped; other text is an error naming both lines (or the stored message),
    skipped, or replaces the earlier one (``on_conflict``). Returns the records
    and how many messages were skipped and replaced."""
    pending: list[tuple[str, dict[str, Any]]] = []
    seen: dict[str, int] = {}  # key -> index in pending
    skipped = replaced = 0
    for rtype, rec in records:
        if rtype != "message":
            pending.append((rtype, rec))
            continue
        key = rec["key"]
        if key in seen:
            earlier = pending[seen[key]][1]
            if earlier["content"] == rec["content"] or on_conflict == "skip":
                skipped += 1
                continue
            if on_conflict == "error":
                raise _conflict(name, rec, f"is also on line {earlier['line']}")
            pending[seen[key]] = (rtype, {**rec, "replace": earlier.get("replace")})
            replaced += 1
            continue
        if key in existing_keys:
            stored = store.backend.message_by_key(store.scope, key)
            if stored is None or stored.content == rec["content"] or on_conflict == "skip":
                skipped += 1
                continue
            if on_conflict == "error":
                raise _conflict(name, rec, f"is already stored (message #{stored.id})")
            rec = {**rec, "replace": stored.id}
            replaced += 1
        seen[key] = len(pending)
        pending.append((rtype, rec))
    return pending, skipped, replaced
