"""Deleting for real over PostgreSQL: one row with its index entries, lineage
(what derives from a message), forgetting, and the scrub (VACUUM).

The same rules as :mod:`memory.storage.sqlite.lineage`: a forgotten memory
leaves ``memories`` (its ``tsv`` and GIN entries with it) and
``memory_vectors`` (cascade); its earlier audit rows lose their text; a
``forget`` event records it. The caller holds the transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ... import timeutil
from ...errors import NotFoundError, UsageError
from ..protocol import Scrub
from ..records import ForgetResult, Lineage
from ..scope import Scope
from .base import Base
from .connection import translate
from .filters import storable

# What a forget can leave its text in, VACUUMed after it commits. VACUUM prunes
# dead tuples but does not zero the bytes they leave in a page's free space
# (measured: the row written last stayed in the heap file), so the tables that
# hold text are rewritten (VACUUM FULL, which also rebuilds their indexes);
# the vectors hold no text, and rebuilding their HNSW graph would take minutes.
REWRITTEN = ("memories", "messages", "memory_events", "conversations", "term_stats")
SCRUB_WAIT_MS = 2000


def insert_event(
    b: Base,
    memory_id: int | None,
    event: str,
    *,
    profile: str,
    at: str = "",
    actor: str = "user",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    row = b.x(
        "INSERT INTO memory_events (memory_id, profile, event, at, actor, before, after, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        [
            memory_id,
            profile,
            event,
            at or timeutil.now_iso(),
            actor,
            None if before is None else Jsonb(before),
            None if after is None else Jsonb(after),
            Jsonb(detail or {}),
        ],  # fmt: skip
    ).fetchone()
    assert row is not None
    return int(row[0])


def delete_row(
    b: Base, memory_id: int, *, detail: dict[str, Any], actor: str = "user", at: str = ""
) -> str:
    """The one deletion of a memory; returns its text. The caller holds the
    transaction and has checked the namespace."""
    row = b.x(
        "DELETE FROM memories WHERE id = %s RETURNING profile, content", [memory_id]
    ).fetchone()
    assert row is not None
    profile, content = str(row[0]), str(row[1])
    b.x(
        "UPDATE memory_events SET before = NULL, after = NULL WHERE memory_id = %s "
        "AND profile = %s AND (before IS NOT NULL OR after IS NOT NULL)",
        [memory_id, profile],
    )
    insert_event(
        b, memory_id, "forget", profile=profile, at=at, actor=actor,
        detail={**detail, "profile": profile},
    )  # fmt: skip
    return content


def restore_superseded(
    b: Base, scope: Scope, memory_id: int, result: ForgetResult, at: str
) -> None:
    """A memory that ``memory_id`` superseded is current again once it goes."""
    rows = b.x(
        "UPDATE memories SET superseded_by = NULL, valid_until = NULL, updated_at = %s "
        "WHERE superseded_by = %s AND profile = %s RETURNING id",
        [at or timeutil.now_iso(), memory_id, scope.writes],
    ).fetchall()
    for (old_id,) in sorted(rows):
        insert_event(
            b, int(old_id), "restore", profile=scope.writes, at=at,
            detail={"forgotten": memory_id},
        )  # fmt: skip
        result.restored.append(int(old_id))


def lineage(b: Base, scope: Scope, message_ids: Iterable[int]) -> Lineage:
    found = b.x(
        "SELECT id, conversation_id FROM messages WHERE profile = %s AND id = ANY(%s) ORDER BY id",
        [scope.writes, storable(message_ids)],
    ).fetchall()
    ids = [int(r[0]) for r in found]
    convs = sorted({str(r[1]) for r in found})
    if not ids:
        return Lineage((), (), (), ())
    rows = b.x(
        "SELECT id FROM memories m WHERE profile = %s AND (source_message_id = ANY(%s) "
        "OR (kind IN ('summary', 'episode') AND conversation_id = ANY(%s)) "
        "OR ((source = 'fact-key' OR kind = 'example') "
        "AND jsonb_typeof(metadata->'source_message_ids') = 'array' "
        "AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(metadata->'source_message_ids') j "
        "WHERE j = ANY(%s)))) ORDER BY id",
        [scope.writes, ids, convs, [str(i) for i in ids]],
    ).fetchall()
    memories = [int(r[0]) for r in rows]
    # Consolidation notes the message behind an update or an ignored duplicate:
    # an updated memory's text now descends from it; an ignore event quotes it.
    events = b.x(
        "SELECT e.id, e.event, m.id FROM memory_events e JOIN memories m ON m.id = e.memory_id "
        "WHERE e.profile = %s AND m.profile = %s AND e.event IN ('update', 'ignore') "
        "AND e.detail ? 'source_message' AND e.detail->>'source_message' = ANY(%s) ORDER BY e.id",
        [scope.writes, scope.writes, [str(i) for i in ids]],
    ).fetchall()
    quoting = []
    for event_id, event, memory_id in events:
        if event == "update":
            memories.append(int(memory_id))
        else:
            quoting.append(int(event_id))
    return Lineage(tuple(ids), tuple(dict.fromkeys(memories)), tuple(convs), tuple(quoting))


def forget(
    b: Base,
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
        row = b.x(
            "SELECT id, kind, source_message_id, source FROM memories "
            "WHERE id = %s AND profile = %s",
            [(storable([memory_id]) or [0])[0], scope.writes],
        ).fetchone()
        if row is None:
            raise NotFoundError(
                f"No memory with id {memory_id} in profile {scope.writes!r}: "
                "see `mem list` for ids; nothing was forgotten."
            )
        message_id = row[2]
        follow = message_id is not None and (with_source or row[1] == "message")
        if (
            follow
            and b.x(
                "SELECT 1 FROM messages WHERE id = %s AND profile = %s", [message_id, scope.writes]
            ).fetchone()
            is None
        ):
            follow = False  # a link out of the namespace is never followed
        if follow:
            lost.append(int(message_id))
        if int(row[0]) not in result.memories:
            restore_superseded(b, scope, int(row[0]), result, at)
            detail = {"kind": row[1], "source": row[3], "with_source": with_source}
            result.texts.append(delete_row(b, int(row[0]), detail=detail, at=at))
            result.memories.append(int(row[0]))
    _follow(b, scope, lost, result, at)
    if scrub is not None:
        _scrub_words(b, scope, scrub, result)
    gone = set(result.memories) | set(result.derived)
    result.restored = [m for m in result.restored if m not in gone]
    return result


def _follow(b: Base, scope: Scope, lost: list[int], result: ForgetResult, at: str) -> None:
    """Delete what derives from the ``lost`` messages, then the messages."""
    found = lineage(b, scope, lost)
    if not found.messages:
        return
    for event_id in found.quoting_events:
        b.x("UPDATE memory_events SET before = NULL, after = NULL WHERE id = %s", [event_id])
        result.events += 1
    for memory_id in found.memories:
        if memory_id in result.memories or memory_id in result.derived:
            continue
        row = b.x("SELECT kind, source FROM memories WHERE id = %s", [memory_id]).fetchone()
        if row is None:
            continue
        restore_superseded(b, scope, memory_id, result, at)
        detail = {"kind": row[0], "source": row[1], "reason": "lineage"}
        text = delete_row(b, memory_id, detail=detail, at=at)
        # A message's own index row is the message: the caller asked for it.
        (result.memories if row[0] == "message" else result.derived).append(memory_id)
        result.texts.append(text)
    firsts: dict[str, int] = {}
    for message_id, conv, content in b.x(
        "DELETE FROM messages WHERE id = ANY(%s) AND profile = %s "
        "RETURNING id, conversation_id, content",
        [list(found.messages), scope.writes],
    ).fetchall():
        firsts[str(conv)] = min(firsts.get(str(conv), int(message_id)), int(message_id))
        result.texts.append(str(content))
    result.messages.extend(found.messages)
    for conv, first in sorted(firsts.items()):
        cur = b.x(
            "UPDATE conversations SET summary = NULL, summary_upto = NULL "
            "WHERE id = %s AND profile = %s AND summary IS NOT NULL "
            "AND (summary_upto IS NULL OR summary_upto >= %s)",
            [conv, scope.writes, first],
        )
        if cur.rowcount:
            result.summaries.append(conv)


def _scrub_words(b: Base, scope: Scope, scrub: Scrub, result: ForgetResult) -> None:
    """Blank copies that keep no lineage: summaries, titles, audit text."""
    for conv, summary, title in b.x(
        "SELECT id, summary, title FROM conversations WHERE profile = %s ORDER BY seq",
        [scope.writes],
    ).fetchall():
        if conv not in result.summaries and summary and scrub(str(summary)):
            b.x(
                "UPDATE conversations SET summary = NULL, summary_upto = NULL WHERE id = %s",
                [conv],
            )
            result.summaries.append(str(conv))
        if title and scrub(str(title)):
            b.x("UPDATE conversations SET title = NULL WHERE id = %s", [conv])
            result.titles.append(str(conv))
    rows = b.x(
        "SELECT id, before::text, after::text FROM memory_events WHERE profile = %s "
        "AND (before IS NOT NULL OR after IS NOT NULL)",
        [scope.writes],
    ).fetchall()
    for event_id, before, after in rows:
        if scrub(" ".join(x for x in (before, after) if x)):
            b.x("UPDATE memory_events SET before = NULL, after = NULL WHERE id = %s", [event_id])
            result.events += 1


def _drop_unfinished(b: Base) -> None:
    """An interrupted ``REINDEX CONCURRENTLY`` leaves an invalid copy behind
    (of ``meta``'s key, or of a memories index from an older mem's scrub)."""
    for (index,) in b.conn.execute(
        "SELECT indexrelid::regclass::text FROM pg_index "
        "WHERE indrelid IN ('memories'::regclass, 'meta'::regclass) AND NOT indisvalid"
    ).fetchall():
        b.conn.execute(f"DROP INDEX IF EXISTS {index}".encode())


def vacuum(b: Base, *, wait_ms: int = SCRUB_WAIT_MS) -> bool:
    """Rewrite the tables a forget touches (outside any transaction), once
    no snapshot older than the forget is left: ``VACUUM FULL`` writes each
    table holding text anew, without the dead tuples or the bytes they left
    (see :data:`REWRITTEN`), and rebuilds its indexes (a GIN index keeps a
    lexeme as a key after its last row has gone). Readers and writers of a
    table wait while it is rewritten.

    The wait: a rewrite keeps every tuple an open snapshot may still see, so
    the scrub first rebuilds ``meta``'s one-page key with ``REINDEX
    CONCURRENTLY``, which returns only when every snapshot of the database
    older than it has ended (rebuilding the keyword index for that, as
    before, took 8 s at 1M memories; the rewrite rebuilds it anyway).

    False, to be retried, inside a transaction; for a role that does not own
    the tables (PostgreSQL 16 lets only the owner vacuum: ``mem admin
    scrub``); or when another session kept a lock or snapshot the scrub
    waits for past ``wait_ms`` (its unfinished copy of the key is dropped)."""
    if b.in_transaction or not b.trusted:
        return False
    try:
        b.conn.execute(f"SET lock_timeout = {int(wait_ms)}".encode())
        try:
            _drop_unfinished(b)
            # First: it waits out every older snapshot of the database, so
            # the rewrites after it may drop every tuple the forget deleted.
            b.conn.execute("REINDEX INDEX CONCURRENTLY meta_pkey")
            for table in REWRITTEN:
                b.conn.execute(f"VACUUM (FULL) {table}".encode())
            b.conn.execute("VACUUM (INDEX_CLEANUP ON) memory_vectors")
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled):
            with contextlib.suppress(psycopg.errors.LockNotAvailable):
                _drop_unfinished(b)  # else the next scrub does
            return False
        finally:
            b.conn.execute("RESET lock_timeout")
    except psycopg.Error as err:
        raise translate(err, b.where) from None
    return True
