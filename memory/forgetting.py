"""Forgetting for real.

A forgotten memory is deleted from ``memories``, from the FTS5 index (which
runs with ``secure-delete`` and is then optimised, see ``scrub_wal``) and from
both vector tables (vec0 zeroes a deleted vector's slot); ``secure_delete`` is
on, so SQLite zeroes the freed pages; earlier audit rows of that memory lose
their text; and the WAL is checkpointed and truncated, because old frames of
the WAL file would otherwise still hold the text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import timeutil
from .db import transaction
from .errors import NotFoundError, UsageError
from .models import MEMORY_COLUMNS, Memory, memory_from_row
from .store import storable_id
from .text import content_words

if TYPE_CHECKING:
    from .store import MemoryStore


@dataclass
class ForgetReport:
    memories: list[int] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)


def forget(store: MemoryStore, ids: list[int], *, with_source: bool = False) -> ForgetReport:
    """Delete memories (and with ``with_source`` the messages they came from)."""
    if not ids:
        raise UsageError("Nothing to forget: give memory ids, --query or --older-than.")
    report = ForgetReport()
    with transaction(store.conn):
        for memory_id in ids:
            row = store.conn.execute(
                "SELECT id, kind, source, source_message_id FROM memories "
                "WHERE id = ? AND profile = ?",
                [memory_id if storable_id(memory_id) else 0, store.profile],  # 0: no row
            ).fetchone()
            if row is None:
                raise NotFoundError(
                    f"No memory with id {memory_id} in profile {store.profile!r}: "
                    "see `mem list` for ids; nothing was forgotten."
                )
            targets = [int(row[0])]
            message_id = row[3]
            if message_id is not None and store.message(message_id) is None:
                message_id = None  # a link out of the profile is never followed
            if with_source and message_id is not None:
                # The message's own index row goes with the message.
                targets += [
                    int(r[0])
                    for r in store.conn.execute(
                        "SELECT id FROM memories WHERE source_message_id = ? AND kind = 'message' "
                        "AND profile = ?",
                        [message_id, store.profile],
                    ).fetchall()
                    if int(r[0]) != int(row[0])
                ]
            for target in targets:
                if target in report.memories:
                    continue
                _delete_memory(store, target, with_source=with_source)
                report.memories.append(target)
            if with_source and message_id is not None and message_id not in report.messages:
                store.conn.execute("DELETE FROM messages WHERE id = ?", [message_id])
                report.messages.append(int(message_id))
    if not store.conn.in_transaction:
        scrub_wal(store)
    return report


def _delete_memory(store: MemoryStore, memory_id: int, *, with_source: bool) -> None:
    kind, source = store.conn.execute(
        "SELECT kind, source FROM memories WHERE id = ?", [memory_id]
    ).fetchone()
    store.delete_row(memory_id, detail={"kind": kind, "source": source, "with_source": with_source})


def scrub_wal(store: MemoryStore) -> None:
    """Rewrite the FTS index without the deleted entries, then copy the WAL
    into the main file and truncate it to zero bytes.

    A contentless FTS5 table records deletions as tombstones and keeps the
    terms in its segments until they are merged, so the index is optimised
    (about 0.2 s at 100k memories); ``secure_delete`` zeroes the pages freed.
    """
    with transaction(store.conn):
        store.conn.execute("INSERT INTO memories_fts(memories_fts) VALUES ('optimize')")
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def select_by_query(store: MemoryStore, query: str, *, kind: str | None = None) -> list[Memory]:
    """Memories of this profile containing every content word of ``query``.

    Forgetting is destructive, so this matches precisely (all words, stemmed)
    rather than by the fuzzy ranking of ``search``.
    """
    terms = content_words(query) or query.split()
    if not terms:
        raise UsageError("Empty --query: give the words the memories to forget contain.")
    match = " AND ".join('"' + t.replace('"', '""') + '"' for t in terms)
    sql = (
        f"SELECT {', '.join('m.' + c.strip() for c in MEMORY_COLUMNS.split(','))} "
        "FROM memories_fts f JOIN memories m ON m.id = f.rowid "
        "WHERE memories_fts MATCH ? AND m.profile = ?"
    )
    params: list[object] = [match, store.profile]
    if kind:
        sql += " AND m.kind = ?"
        params.append(kind)
    rows = store.conn.execute(sql + " ORDER BY m.id", params).fetchall()
    return [memory_from_row(r) for r in rows]


def select_older_than(store: MemoryStore, age: str, *, kind: str | None = None) -> list[Memory]:
    """Memories of this profile created longer than ``age`` (e.g. ``90d``) ago."""
    cutoff = timeutil.to_iso(timeutil.now() - timeutil.parse_duration(age))
    sql = f"SELECT {MEMORY_COLUMNS} FROM memories WHERE profile = ? AND created_at < ?"
    params: list[object] = [store.profile, cutoff]
    if kind:
        sql += " AND kind = ?"
        params.append(kind)
    rows = store.conn.execute(sql + " ORDER BY id", params).fetchall()
    return [memory_from_row(r) for r in rows]
