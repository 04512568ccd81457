"""Deleting for real over SQLite: one row with its index entries, lineage
(what derives from a message), forgetting, and the scrub of side storage.

The one copy of this SQL (:mod:`memory.lifecycle.forgetting` keeps only the
policy; ``MemoryStore.delete_row`` goes once the store is on the seam): a
forgotten memory leaves
``memories``, the FTS5 index (secure-delete, then optimised) and both vector
tables; its earlier audit rows lose their text; ``secure_delete`` zeroes freed
pages; the WAL is checkpointed and truncated.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from memory import timeutil
from memory.errors import NotFoundError, UsageError
from memory.storage.protocol import Scrub
from memory.storage.protocol_lifecycle import NarrowScrub
from memory.storage.records import ForgetResult, Lineage
from memory.storage.scope import Scope
from memory.storage.sqlite import keyword_stats
from memory.storage.sqlite.db import Connection
from memory.storage.sqlite.filters import marks
from memory.storage.sqlite.scrub import PENDING_KEY as PENDING_KEY
from memory.storage.sqlite.scrub import SCRUB_WAIT_MS, scrub_wal

MESSAGE_FLOOR_KEY = "message_id_floor"


def storable_id(value: int) -> bool:
    """SQLite's row ids are 64-bit: a larger id is simply not found."""
    return 0 < value < 2**63


def insert_event(
    conn: Connection,
    memory_id: int | None,
    event: str,
    *,
    at: str,
    actor: str = "user",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    cur = conn.execute(
        "INSERT INTO memory_events(memory_id, event, at, actor, before, after, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            memory_id,
            event,
            at or timeutil.now_iso(),
            actor,
            None if before is None else json.dumps(before),
            None if after is None else json.dumps(after),
            json.dumps(detail or {}),
        ],
    )
    return int(cur.lastrowid)


def unindex(conn: Connection, memory_id: int) -> None:
    keyword_stats.count_row(conn, memory_id, -1)
    conn.execute("DELETE FROM memories_fts WHERE rowid = ?", [memory_id])
    conn.execute("DELETE FROM memories_vec WHERE id = ?", [memory_id])
    conn.execute("DELETE FROM memory_vectors WHERE id = ?", [memory_id])


def delete_row(
    conn: Connection, memory_id: int, *, detail: dict[str, Any], actor: str = "user", at: str = ""
) -> str:
    """The one deletion of a memory; returns its text. The caller holds the
    transaction and has checked the namespace."""
    profile, content = conn.execute(
        "SELECT profile, content FROM memories WHERE id = ?", [memory_id]
    ).fetchone()
    unindex(conn, memory_id)
    conn.execute("DELETE FROM memories WHERE id = ?", [memory_id])
    conn.execute(
        "UPDATE memory_events SET before = NULL, after = NULL WHERE memory_id = ?", [memory_id]
    )
    insert_event(
        conn, memory_id, "forget", at=at, actor=actor, detail={**detail, "profile": profile}
    )
    return str(content)


def restore_superseded(
    conn: Connection, scope: Scope, memory_id: int, result: ForgetResult, at: str
) -> None:
    """A memory that ``memory_id`` superseded is current again once it goes."""
    rows = conn.execute(
        "SELECT id FROM memories WHERE superseded_by = ? AND profile = ?",
        [memory_id, scope.writes],
    ).fetchall()
    for (old_id,) in rows:
        conn.execute(
            "UPDATE memories SET superseded_by = NULL, valid_until = NULL, updated_at = ? "
            "WHERE id = ?",
            [at or timeutil.now_iso(), old_id],
        )
        insert_event(conn, int(old_id), "restore", at=at, detail={"forgotten": memory_id})
        result.restored.append(int(old_id))


def lineage(conn: Connection, scope: Scope, message_ids: Iterable[int]) -> Lineage:
    wanted = [i for i in message_ids if storable_id(i)]
    found = conn.execute(
        "SELECT id, conversation_id FROM messages WHERE profile = ? "
        "AND id IN (SELECT value FROM json_each(?)) ORDER BY id",
        [scope.writes, json.dumps(wanted)],
    ).fetchall()
    ids = [int(r[0]) for r in found]
    convs = sorted({str(r[1]) for r in found})
    if not ids:
        return Lineage((), (), (), ())
    id_marks, conv_marks = marks(len(ids)), marks(len(convs))
    rows = conn.execute(
        f"SELECT id FROM memories m WHERE profile = ? AND ("
        f"source_message_id IN ({id_marks}) "
        f"OR (kind IN ('summary', 'episode') AND conversation_id IN ({conv_marks})) "
        f"OR ((source = 'fact-key' OR kind = 'example') AND EXISTS (SELECT 1 FROM "
        f"json_each(m.metadata, '$.source_message_ids') j WHERE j.value IN ({id_marks})))) "
        "ORDER BY id",
        [scope.writes, *ids, *convs, *ids],
    ).fetchall()
    memories = [int(r[0]) for r in rows]
    # Consolidation notes the message behind an update or an ignored duplicate:
    # an updated memory's text now descends from it; an ignore event quotes it.
    events = conn.execute(
        "SELECT e.id, e.event, m.id FROM memory_events e "
        "JOIN memories m ON m.id = e.memory_id WHERE m.profile = ? "
        "AND e.event IN ('update', 'ignore') AND json_extract(e.detail, '$.source_message') "
        f"IN ({id_marks}) ORDER BY e.id",
        [scope.writes, *ids],
    ).fetchall()
    quoting = []
    for event_id, event, memory_id in events:
        if event == "update":
            memories.append(int(memory_id))
        else:
            quoting.append(int(event_id))
    return Lineage(tuple(ids), tuple(dict.fromkeys(memories)), tuple(convs), tuple(quoting))


def forget(
    conn: Connection,
    scope: Scope,
    ids: Sequence[int],
    *,
    with_source: bool,
    scrub: Scrub | None,
    at: str,
) -> ForgetResult:
    """See ``StorageBackend.forget``; the caller holds the transaction."""
    if not ids:
        raise UsageError("Nothing to forget: give memory ids.")
    result = ForgetResult()
    lost: list[int] = []
    for memory_id in ids:
        row = conn.execute(
            "SELECT id, kind, source_message_id FROM memories WHERE id = ? AND profile = ?",
            [memory_id if storable_id(memory_id) else 0, scope.writes],
        ).fetchone()
        if row is None:
            raise NotFoundError(
                f"No memory with id {memory_id} in profile {scope.writes!r}: "
                "see `mem list` for ids; nothing was forgotten."
            )
        message_id = row[2]
        follow = message_id is not None and (with_source or row[1] == "message")
        if follow and not _own_message(conn, scope, int(message_id)):
            follow = False  # a link out of the namespace is never followed
        if follow:
            lost.append(int(message_id))
        if int(row[0]) not in result.memories:
            restore_superseded(conn, scope, int(row[0]), result, at)
            detail = {"kind": row[1], "source": _source(conn, row[0]), "with_source": with_source}
            result.texts.append(delete_row(conn, int(row[0]), detail=detail, at=at))
            result.memories.append(int(row[0]))
    _follow(conn, scope, lost, result, at)
    if scrub is not None:
        _scrub_words(conn, scope, scrub, result)
    gone = set(result.memories) | set(result.derived)
    result.restored = [m for m in result.restored if m not in gone]
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, '1') "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [PENDING_KEY],
    )
    return result


def _source(conn: Connection, memory_id: int) -> str:
    return str(conn.execute("SELECT source FROM memories WHERE id = ?", [memory_id]).fetchone()[0])


def _own_message(conn: Connection, scope: Scope, message_id: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM messages WHERE id = ? AND profile = ?", [message_id, scope.writes]
    ).fetchone()
    return row is not None


def _follow(conn: Connection, scope: Scope, lost: list[int], result: ForgetResult, at: str) -> None:
    """Delete what derives from the ``lost`` messages, then the messages."""
    found = lineage(conn, scope, lost)
    if not found.messages:
        return
    for event_id in found.quoting_events:
        conn.execute(
            "UPDATE memory_events SET before = NULL, after = NULL WHERE id = ?", [event_id]
        )
        result.events += 1
    for memory_id in found.memories:
        if memory_id in result.memories or memory_id in result.derived:
            continue
        kind, source, profile = conn.execute(
            "SELECT kind, source, profile FROM memories WHERE id = ?", [memory_id]
        ).fetchone()
        restore_superseded(conn, scope, memory_id, result, at)
        detail = {"kind": kind, "source": source, "reason": "lineage"}
        text = delete_row(conn, memory_id, detail=detail, at=at)
        # A message's own index row is the message: the caller asked for it.
        (result.memories if kind == "message" else result.derived).append(memory_id)
        result.texts.append(text)
    firsts: dict[str, int] = {}
    for message_id in found.messages:
        conv, content = conn.execute(
            "SELECT conversation_id, content FROM messages WHERE id = ?", [message_id]
        ).fetchone()
        firsts.setdefault(str(conv), message_id)
        result.texts.append(str(content))
    keep_message_floor(conn, max(found.messages))
    conn.execute(f"DELETE FROM messages WHERE id IN ({marks(len(found.messages))})", found.messages)
    result.messages.extend(found.messages)
    for conv, first in firsts.items():
        cur = conn.execute(
            "UPDATE conversations SET summary = NULL, summary_upto = NULL "
            "WHERE id = ? AND profile = ? AND summary IS NOT NULL "
            "AND (summary_upto IS NULL OR summary_upto >= ?)",
            [conv, scope.writes, first],
        )
        if cur.rowcount:
            result.summaries.append(conv)


def keep_message_floor(conn: Connection, message_id: int) -> None:
    """Message ids are never reused: the highest ever given out is kept."""
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
        "max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
        [MESSAGE_FLOOR_KEY, str(message_id)],
    )


def _scrub_words(conn: Connection, scope: Scope, scrub: Scrub, result: ForgetResult) -> None:
    """Blank copies that keep no lineage: summaries, titles, audit text."""
    for conv, summary, title in conn.execute(
        "SELECT id, summary, title FROM conversations WHERE profile = ?", [scope.writes]
    ).fetchall():
        if conv not in result.summaries and summary and scrub(str(summary)):
            conn.execute(
                "UPDATE conversations SET summary = NULL, summary_upto = NULL WHERE id = ?",
                [conv],
            )
            result.summaries.append(str(conv))
        if title and scrub(str(title)):
            conn.execute("UPDATE conversations SET title = NULL WHERE id = ?", [conv])
            result.titles.append(str(conv))
    # A cheap substring test in SQL first (NarrowScrub's needles), so only
    # candidate events are decoded and handed to ``scrub``.
    needles = scrub.needles if isinstance(scrub, NarrowScrub) else ()
    sql = (
        "SELECT e.id, e.before, e.after FROM memory_events e JOIN memories m "
        "ON m.id = e.memory_id WHERE m.profile = ? "
        "AND (e.before IS NOT NULL OR e.after IS NOT NULL)"
    )
    sql += "".join(
        " AND instr(lower(coalesce(e.before, '') || coalesce(e.after, '')), ?) > 0" for _ in needles
    )
    rows = conn.execute(sql, [scope.writes, *needles]).fetchall()
    for event_id, before, after in rows:
        text = " ".join(json.dumps(json.loads(x), ensure_ascii=False) for x in (before, after) if x)
        if scrub(text):
            conn.execute(
                "UPDATE memory_events SET before = NULL, after = NULL WHERE id = ?", [event_id]
            )
            result.events += 1


def scrub(conn: Connection, *, wait_ms: int = SCRUB_WAIT_MS) -> bool:
    """See :func:`memory.storage.sqlite.scrub.scrub_wal` (one scrub, two names
    until the store opens through the backend)."""
    return scrub_wal(conn, wait_ms=wait_ms)
