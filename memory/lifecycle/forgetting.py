"""Forgetting for real.

A forgotten memory is deleted from ``memories``, from the FTS5 index (which
runs with ``secure-delete`` and is then optimised, see ``scrub_wal``) and from
both vector tables (vec0 zeroes a deleted vector's slot); ``secure_delete`` is
on, so SQLite zeroes the freed pages; earlier audit rows of that memory lose
their text; and the WAL is checkpointed and truncated, because old frames of
the WAL file would otherwise still hold the text.

Forgetting follows lineage (DESIGN.md, "Scope and lineage"): a message memory
is the index row of a message, so forgetting it deletes the message; a deleted
message takes with it every row derived from it (facts and fact keys whose
source it is, summary and episode rows of its conversation) and the running
summary of its conversation when that summary folded it in. Summaries are
dropped, not regenerated (that needs a model): the next turn folds the turns
that are left into a new one. With ``--query`` the words are also scrubbed
from places without lineage: other summaries, conversation titles and audit
text. The REPL history loses the matching entries (memory.privacy.history).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memory import timeutil
from memory.errors import NotFoundError, UsageError
from memory.privacy import history
from memory.records import MEMORY_COLUMNS, Memory, memory_from_row
from memory.storage.sqlite.db import transaction
from memory.storage.sqlite.scrub import PENDING_KEY, scrub_wal
from memory.store import storable_id
from memory.text import content_words, matches_words, stem

if TYPE_CHECKING:
    from memory.store import MemoryStore


@dataclass
class ForgetReport:
    """What a forget touched, for the receipt and ``--json``."""

    memories: list[int] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    derived: list[int] = field(default_factory=list)
    restored: list[int] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    events: int = 0
    history: int = 0
    scrub_pending: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "forgotten": self.memories,
            "messages": self.messages,
            "derived": self.derived,
            "restored": self.restored,
            "summaries": self.summaries,
            "titles": self.titles,
            "events": self.events,
            "history": self.history,
            "scrub_pending": self.scrub_pending,
            "notes": self.notes,
        }


def forget(
    store: MemoryStore,
    ids: list[int],
    *,
    with_source: bool = False,
    query: str | None = None,
) -> ForgetReport:
    """Delete memories (and with ``with_source`` the messages they came from),
    everything derived from a deleted message, and with ``query`` every copy
    of its words in summaries, titles, audit text and the REPL history."""
    if not ids:
        raise UsageError("Nothing to forget: give memory ids, --query or --older-than.")
    report = ForgetReport()
    texts: list[str] = []
    lost: dict[int, str] = {}  # message id -> its conversation
    terms = _terms(query)
    with transaction(store.conn):
        for memory_id in ids:
            row = store.conn.execute(
                "SELECT id, kind, source_message_id, content FROM memories "
                "WHERE id = ? AND profile = ?",
                [memory_id if storable_id(memory_id) else 0, store.profile],  # 0: no row
            ).fetchone()
            if row is None:
                raise NotFoundError(
                    f"No memory with id {memory_id} in profile {store.profile!r}: "
                    "see `mem list` for ids; nothing was forgotten."
                )
            message_id = row[2]
            # A message memory is the message's index row: its text is the message's.
            follow = message_id is not None and (with_source or row[1] == "message")
            targets = [int(row[0])]
            if follow and store.message(message_id) is None:
                follow = False  # a link out of the profile is never followed
            if follow:
                targets += [
                    int(r[0])
                    for r in store.conn.execute(
                        "SELECT id FROM memories WHERE source_message_id = ? "
                        "AND kind = 'message' AND profile = ?",
                        [message_id, store.profile],
                    ).fetchall()
                ]
            for target in targets:
                if target in report.memories:
                    continue
                _restore_superseded(store, target, report)
                texts.append(_delete_memory(store, target, with_source=with_source))
                report.memories.append(target)
            if follow and message_id not in lost:
                found = store.conn.execute(
                    "SELECT conversation_id, content FROM messages WHERE id = ? AND profile = ?",
                    [message_id, store.profile],
                ).fetchone()
                if found is not None:
                    lost[int(message_id)] = str(found[0])
                    texts.append(str(found[1]))
        _follow_lineage(store, lost, report, texts)
        if terms:
            _scrub_words(store, terms, report)
        gone = set(report.memories) | set(report.derived)
        report.restored = [m for m in report.restored if m not in gone]
        store.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, '1') "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [PENDING_KEY],
        )
    where = history.path_for(store.path, store.profile)
    try:
        report.history = history.scrub(where, texts, terms)
    except OSError as err:
        report.notes.append(
            f"could not scrub the input history {where} ({err.strerror}): make it writable "
            "and forget again, or delete it"
        )
    if not store.conn.in_transaction:
        report.scrub_pending = not scrub_wal(store.conn)
    return report


def _terms(query: str | None) -> list[str]:
    if not query:
        return []
    return [w.casefold() for w in (content_words(query) or query.split())]


def _delete_memory(store: MemoryStore, memory_id: int, *, with_source: bool) -> str:
    """Delete one memory (see ``MemoryStore.delete_row``); returns its text."""
    kind, source, content = store.conn.execute(
        "SELECT kind, source, content FROM memories WHERE id = ?", [memory_id]
    ).fetchone()
    store.delete_row(memory_id, detail={"kind": kind, "source": source, "with_source": with_source})
    return str(content)


def _restore_superseded(store: MemoryStore, memory_id: int, report: ForgetReport) -> None:
    """A fact that ``memory_id`` superseded is current again once it is forgotten."""
    rows = store.conn.execute(
        "SELECT id FROM memories WHERE superseded_by = ? AND profile = ?",
        [memory_id, store.profile],
    ).fetchall()
    for (old_id,) in rows:
        store.conn.execute(
            "UPDATE memories SET superseded_by = NULL, valid_until = NULL, updated_at = ? "
            "WHERE id = ?",
            [timeutil.now_iso(), old_id],
        )
        store._event(int(old_id), "restore", detail={"forgotten": memory_id})
        report.restored.append(int(old_id))


def _follow_lineage(
    store: MemoryStore, lost: dict[int, str], report: ForgetReport, texts: list[str]
) -> None:
    """Delete what was derived from the ``lost`` messages, then the messages."""
    if not lost:
        return
    ids = sorted(lost)
    convs = sorted(set(lost.values()))
    id_marks, conv_marks = ",".join("?" * len(ids)), ",".join("?" * len(convs))
    rows = store.conn.execute(
        f"SELECT id, kind, source, content FROM memories m WHERE profile = ? AND ("
        f"source_message_id IN ({id_marks}) "
        f"OR (kind IN ('summary', 'episode') AND conversation_id IN ({conv_marks})) "
        f"OR (source = 'fact-key' AND EXISTS (SELECT 1 FROM "
        f"json_each(m.metadata, '$.source_message_ids') j WHERE j.value IN ({id_marks}))))",
        [store.profile, *ids, *convs, *ids],
    ).fetchall()
    # Consolidation notes the message behind an update or an ignored duplicate:
    # an updated memory's text now descends from it; an ignore event quotes it.
    events = store.conn.execute(
        "SELECT e.id, e.event, m.id, m.kind, m.source, m.content FROM memory_events e "
        "JOIN memories m ON m.id = e.memory_id WHERE m.profile = ? "
        f"AND e.event IN ('update', 'ignore') AND json_extract(e.detail, '$.source_message') "
        f"IN ({id_marks})",
        [store.profile, *ids],
    ).fetchall()
    for event_id, event, *row in events:
        if event == "update":
            rows.append(tuple(row))
        else:
            store.conn.execute(
                "UPDATE memory_events SET before = NULL, after = NULL WHERE id = ?", [event_id]
            )
            report.events += 1
    for memory_id, kind, source, content in rows:
        if int(memory_id) in report.memories or int(memory_id) in report.derived:
            continue
        _restore_superseded(store, int(memory_id), report)
        store.delete_row(
            int(memory_id), detail={"kind": kind, "source": source, "reason": "lineage"}
        )
        report.derived.append(int(memory_id))
        texts.append(str(content))
    store.conn.execute(f"DELETE FROM messages WHERE id IN ({id_marks})", ids)
    report.messages.extend(ids)
    for conv in convs:
        first = min(m for m, c in lost.items() if c == conv)
        cur = store.conn.execute(
            "UPDATE conversations SET summary = NULL, summary_upto = NULL "
            "WHERE id = ? AND profile = ? AND summary IS NOT NULL "
            "AND (summary_upto IS NULL OR summary_upto >= ?)",
            [conv, store.profile, first],
        )
        if cur.rowcount:
            report.summaries.append(conv)


def _scrub_words(store: MemoryStore, terms: list[str], report: ForgetReport) -> None:
    """The words of ``--query`` out of copies that keep no lineage."""
    for conv, summary, title in store.conn.execute(
        "SELECT id, summary, title FROM conversations WHERE profile = ?", [store.profile]
    ).fetchall():
        if conv not in report.summaries and matches_words(summary, terms):
            store.conn.execute(
                "UPDATE conversations SET summary = NULL, summary_upto = NULL WHERE id = ?",
                [conv],
            )
            report.summaries.append(str(conv))
        if matches_words(title, terms):
            store.conn.execute("UPDATE conversations SET title = NULL WHERE id = ?", [conv])
            report.titles.append(str(conv))
    # A cheap substring test in SQL first (stems only change endings), so only
    # candidate events are decoded and split into words here.
    prefixes = [p for p in (os.path.commonprefix([t, stem(t)]) for t in terms) if p.isascii()]
    sql = (
        "SELECT e.id, e.before, e.after FROM memory_events e JOIN memories m "
        "ON m.id = e.memory_id WHERE m.profile = ? "
        "AND (e.before IS NOT NULL OR e.after IS NOT NULL)"
    )
    sql += "".join(
        " AND instr(lower(coalesce(e.before, '') || coalesce(e.after, '')), ?) > 0"
        for _ in prefixes
    )
    rows = store.conn.execute(sql, [store.profile, *prefixes]).fetchall()
    for event_id, before, after in rows:
        text = " ".join(json.dumps(json.loads(x), ensure_ascii=False) for x in (before, after) if x)
        if matches_words(text, terms):
            store.conn.execute(
                "UPDATE memory_events SET before = NULL, after = NULL WHERE id = ?", [event_id]
            )
            report.events += 1


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
