"""Scope: every lookup stays inside the profile, and ids are never reused.

Issue 11 items 2 (lookups by id, external id and source reference), 3 (the
keyword leg and its statistics, import counts and errors) and 8 (memory ids).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from memory import MemoryStore
from memory.errors import NotFoundError, UsageError
from memory.lifecycle.forgetting import forget
from memory.retrieval.search import find
from memory.storage.sqlite.db import connect
from memory.storage.sqlite.schema import _known_names, _migrations

ALICE_MESSAGE = {
    "conversation": "therapy",
    "id": "m1",
    "role": "user",
    "speaker": "Alice",
    "content": "Alice told her therapist about the divorce",
    "timestamp": "2024-01-01T10:00:00",
}


def _lines(path: Path, *objs: dict[str, Any]) -> str:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    return str(path)


def _open(mem_home: Path, profile: str) -> MemoryStore:
    return MemoryStore.open(mem_home / "mem.db", profile=profile)


def _alice_messages(mem_home: Path) -> list[str]:
    with _open(mem_home, "alice") as alice:
        return [m.content for m in alice.messages("therapy")]


# ------------------------------------------------------------ item 8: ids
def test_ids_are_never_reused_after_forgetting_the_highest_then_a_lower(cli: Any) -> None:
    for text in ("a", "b", "c"):
        cli("remember", text)
    cli("forget", "3", "--yes")
    cli("forget", "1", "--yes")
    assert "#4" in cli("remember", "d").stdout
    cli("forget", "2", "--yes")
    cli("forget", "4", "--yes")
    assert "#5" in cli("remember", "e").stdout


def test_ids_are_never_reused_across_processes(mem_home: Path) -> None:
    one = _open(mem_home, "default")
    two = _open(mem_home, "default")
    try:
        first = one.remember("first").id
        second = one.remember("second").id
        forget(two, [second])
        forget(two, [first])
        assert one.remember("third").id == second + 1
        assert two.remember("fourth").id == second + 2
    finally:
        one.close()
        two.close()


def test_ids_are_never_reused_after_import(cli: Any, tmp_path: Path) -> None:
    cli("remember", "a")
    cli("remember", "b")
    cli("forget", "2", "--yes")
    cli("import", _lines(tmp_path / "m.jsonl", {"type": "memory", "content": "imported"}))
    assert [m["id"] for m in cli.json("list")] == [3, 1]


def test_a_schema_2_database_is_upgraded_and_keeps_its_floor(mem_home: Path) -> None:
    """A file written by the previous mem (migrations m001-m002) where #3 then #1
    were forgotten, so its floor says '1' (the old TEXT bug): opening it applies
    the new migration, which takes the floor from the audit trail."""
    path = mem_home / "mem.db"
    conn = connect(path)
    from sqlite_utils import Database

    new = [n for n in _known_names() if n not in ("m001_initial", "m002_documents")]
    _migrations().apply(Database(conn), stop_before=new)
    stamp = "2024-01-01T00:00:00Z"
    conn.execute(
        "INSERT INTO memories(id, profile, kind, content, source, created_at, updated_at) "
        "VALUES (2, 'default', 'fact', 'b', 'user', ?, ?)",
        [stamp, stamp],
    )
    for mid in (1, 2, 3):
        conn.execute(
            "INSERT INTO memory_events(memory_id, event, at) VALUES (?, 'add', ?)", [mid, stamp]
        )
    for mid in (3, 1):
        conn.execute(
            "INSERT INTO memory_events(memory_id, event, at) VALUES (?, 'forget', ?)",
            [mid, stamp],
        )
    conn.execute("INSERT INTO meta(key, value) VALUES ('memory_id_floor', '1')")
    conn.commit()
    conn.close()
    with _open(mem_home, "default") as store:
        applied = store.conn.execute("SELECT name FROM _sqlite_migrations").fetchall()
        assert [r[0] for r in applied] == _known_names()
        assert store.get(2).content == "b"
        assert store.remember("d").id == 4


def test_message_ids_are_never_reused(mem_home: Path) -> None:
    """Forgetting the newest message must not hand its id to the next one: a
    stale reference (an export's source, an audit detail) would name a new
    message. (Failed before: the next message got the forgotten id.)"""
    with _open(mem_home, "default") as store:
        store.new_conversation("c", conversation_id="c")
        store.log_message("c", "user", "first line")
        last = store.log_message("c", "user", "second line")
        row = store.conn.execute(
            "SELECT id FROM memories WHERE source_message_id = ?", [last]
        ).fetchone()
        forget(store, [int(row[0])])  # a message memory: the message goes too
        assert store.message(last) is None
        assert store.log_message("c", "user", "third line") == last + 1


def test_a_schema_4_database_gets_its_message_floor(mem_home: Path) -> None:
    """A file from before the message floor (m001-m004) whose newest message was
    deleted: opening it takes the floor from what is left and the audit trail
    of its index rows, so the id is not given out again."""
    path = mem_home / "mem.db"
    conn = connect(path)
    from sqlite_utils import Database

    new = [n for n in _known_names() if n > "m004"]
    assert new, "a migration after m004 keeps the message floor"
    _migrations().apply(Database(conn), stop_before=new)
    stamp = "2024-01-01T00:00:00Z"
    conn.execute(
        "INSERT INTO conversations(id, profile, created_at, updated_at) "
        "VALUES ('c', 'default', ?, ?)",
        [stamp, stamp],
    )
    for mid in (1, 2, 3):
        conn.execute(
            "INSERT INTO messages(id, conversation_id, profile, role, content, created_at) "
            "VALUES (?, 'c', 'default', 'user', 'm', ?)",
            [mid, stamp],
        )
    conn.execute("DELETE FROM messages WHERE id = 3")  # before the trigger existed
    conn.execute(
        "INSERT INTO memory_events(memory_id, event, at, detail) "
        "VALUES (9, 'forget', ?, '{\"source_message\": 3}')",
        [stamp],
    )
    conn.commit()
    conn.close()
    with _open(mem_home, "default") as store:
        assert store.log_message("c", "user", "next") == 4


# --------------------------------------------------- item 2: scoped lookups
def test_forget_with_source_cannot_delete_another_profiles_message(
    cli: Any, tmp_path: Path, mem_home: Path
) -> None:
    cli("import", _lines(tmp_path / "a.jsonl", ALICE_MESSAGE), "--profile", "alice")
    line = {"type": "memory", "content": "x", "source_message": "therapy\u001fm1"}
    cli("import", _lines(tmp_path / "b.jsonl", line), "--profile", "bob")
    (mine,) = cli.json("list", "--profile", "bob")
    assert mine["source_message_id"] is None
    cli("forget", str(mine["id"]), "--with-source", "--profile", "bob", "--yes")
    assert _alice_messages(mem_home) == [ALICE_MESSAGE["content"]]


def test_forget_with_source_of_a_stale_cross_profile_link(
    cli: Any, tmp_path: Path, mem_home: Path
) -> None:
    """A link made before the fix (bob's memory naming alice's message) is not
    followed: bob's memory goes, alice's message and its index row stay."""
    cli("import", _lines(tmp_path / "a.jsonl", ALICE_MESSAGE), "--profile", "alice")
    with _open(mem_home, "alice") as alice:
        (message,) = alice.messages("therapy")
        (indexed,) = alice.list_memories(kind="message")
    with _open(mem_home, "bob") as bob:
        mid = bob.remember("x").id
        bob.conn.execute(
            "UPDATE memories SET source_message_id = ? WHERE id = ?", [message.id, mid]
        )
        report = forget(bob, [mid], with_source=True)
        assert (report.memories, report.messages) == ([mid], [])
    assert _alice_messages(mem_home) == [ALICE_MESSAGE["content"]]
    with _open(mem_home, "alice") as alice:
        assert alice.get(indexed.id).content == ALICE_MESSAGE["content"]
        assert "therapy" not in cli("export", "--profile", "bob").stdout


def test_store_lookups_by_id_stay_in_the_profile(mem_home: Path) -> None:
    with _open(mem_home, "alice") as alice:
        secret = alice.remember("alice's secret").id
        gone = alice.remember("alice forgot this").id
        forget(alice, [gone])
        conv = alice.new_conversation("alice chat")
        alice.set_summary(conv, "alice summary", 1)
    with _open(mem_home, "bob") as bob:
        own = bob.remember("bob's own").id
        for lookup in (
            lambda: bob.get(secret),
            lambda: bob.history(secret),
            lambda: bob.history(gone),
            lambda: bob.supersede(secret, own),
            lambda: bob.supersede(own, secret),
            lambda: bob.update_memory(secret, "bob was here"),
        ):
            with pytest.raises(NotFoundError) as err:
                lookup()
            assert "alice" not in str(err.value)
        with pytest.raises(UsageError) as taken:
            bob.new_conversation(conversation_id=conv)
        assert "alice" not in str(taken.value)
        bob.touch([secret])
        assert bob.summary(conv) == (None, None)
        bob.set_summary(conv, "bob summary", 2)
        assert bob.message(1) is None
    with _open(mem_home, "alice") as alice:
        mem = alice.get(secret)
        assert (mem.content, mem.use_count, mem.superseded_by) == ("alice's secret", 0, None)
        assert alice.summary(conv) == ("alice summary", 1)
        assert [e.event for e in alice.history(gone)] == ["add", "forget"]


def test_import_of_another_profiles_ids_adds_them_as_this_profiles_own(
    cli: Any, tmp_path: Path, mem_home: Path
) -> None:
    cli("import", _lines(tmp_path / "a.jsonl", ALICE_MESSAGE), "--profile", "alice")
    bobs = {**ALICE_MESSAGE, "speaker": "Bob", "content": "Bob's own therapy notes"}
    memory = {"type": "memory", "content": "bob fact", "source_message": "therapy\u001fm1"}
    conversation = {"type": "conversation", "id": "therapy", "title": "bob's title"}
    path = _lines(tmp_path / "b.jsonl", conversation, bobs, memory)
    result = cli("import", path, "--profile", "bob", "--json")
    assert "alice" not in result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert (report["messages_added"], report["messages_skipped"]) == (1, 0)
    assert report["memories_added"] == 1
    again = json.loads(cli("import", path, "--profile", "bob", "--json").stdout)
    assert (again["messages_added"], again["messages_skipped"]) == (0, 1)
    assert _alice_messages(mem_home) == [ALICE_MESSAGE["content"]]
    with _open(mem_home, "bob") as bob:
        (conv,) = bob.conversations()
        assert conv["messages"] == 1 and conv["title"] == "bob's title"
        (message,) = bob.messages(conv["id"])
        assert message.content == bobs["content"]
        fact = next(m for m in bob.list_memories() if m.content == "bob fact")
        assert fact.source_message_id == message.id  # bob's message, not alice's
    with _open(mem_home, "alice") as alice:
        assert [c["title"] for c in alice.conversations()] == [None]
    # bob's export imports into a fresh file and back into bob without a change
    exported = cli("export", "--profile", "bob").stdout
    assert "Alice" not in exported
    (tmp_path / "bob-export.jsonl").write_text(exported)
    back = cli.json("import", str(tmp_path / "bob-export.jsonl"), "--profile", "bob")
    assert (back["messages_added"], back["memories_added"]) == (0, 0)


def test_import_never_counts_another_profiles_keys_as_skipped(
    cli: Any, tmp_path: Path, mem_home: Path
) -> None:
    cli("import", _lines(tmp_path / "a.jsonl", ALICE_MESSAGE), "--profile", "alice")
    line = {**ALICE_MESSAGE, "conversation": "bobchat", "import_key": "therapy\u001fm1"}
    report = cli.json("import", _lines(tmp_path / "b.jsonl", line), "--profile", "bob")
    assert (report["messages_added"], report["messages_skipped"]) == (1, 0)
    assert _alice_messages(mem_home) == [ALICE_MESSAGE["content"]]


# ------------------------------------------- item 3: the keyword leg's scope
STAMP = "2024-03-01T10:00:00Z"
BOB_NOTES = [
    "my zorblax is blue",
    "the zorblax needs a new quux every spring",
    "quux quux quux: the word of the week",
    "Bob bought a second zorblax, a small one, for the garden shed and the car",
    "a long note about nothing in particular that mentions quux once at the end quux",
    "zorblax",
]


def _import_memories(cli: Any, path: Path, profile: str, texts: list[str]) -> None:
    lines = [{"type": "memory", "content": t, "created_at": STAMP} for t in texts]
    cli("import", _lines(path, *lines), "--profile", profile)


def _scores(mem_home: Path, query: str) -> dict[str, float]:
    from memory.retrieval.ranking import Ranking
    from memory.retrieval.search import search

    with _open(mem_home, "bob") as bob:
        hits = search(bob, query, limit=20, ranking=Ranking(recency_weight=0.0))
        return {h.content: h.score for h in hits}


def test_bob_finds_his_zorblax_among_2100_of_alices(
    cli: Any, tmp_path: Path, mem_home: Path
) -> None:
    texts = [f"zorblax report number {i}" for i in range(2100)]
    _import_memories(cli, tmp_path / "a.jsonl", "alice", texts)
    cli("remember", "bob keeps his zorblax in the attic", "--profile", "bob")
    hits = cli.json("search", "zorblax", "--profile", "bob")
    assert [h["content"] for h in hits] == ["bob keeps his zorblax in the attic"]
    with _open(mem_home, "bob") as bob:
        assert [h.content for h in find(bob, "zorblax", kinds="fact")] == [
            "bob keeps his zorblax in the attic"
        ]


def test_bobs_scores_do_not_move_when_alice_adds_notes(
    cli: Any, tmp_path: Path, mem_home: Path
) -> None:
    _import_memories(cli, tmp_path / "b.jsonl", "bob", BOB_NOTES)
    queries = ("zorblax quux", "zorblax", "quux for the garden")
    alone = {q: _scores(mem_home, q) for q in queries}
    assert len(alone["zorblax quux"]) == len(BOB_NOTES)
    # a few rows of alice: hers are left out one by one
    _import_memories(cli, tmp_path / "a0.jsonl", "alice", ["zorblax quux", "quux"])
    assert {q: _scores(mem_home, q) for q in queries} == alone
    # many: the scope is joined inside the query
    notes = [f"zorblax quux {'and more words ' * (i % 7)}{i}" for i in range(500)]
    _import_memories(cli, tmp_path / "a.jsonl", "alice", notes)
    assert {q: _scores(mem_home, q) for q in queries} == alone
    _import_memories(cli, tmp_path / "a2.jsonl", "alice", ["zorblax"] * 3 + ["quux " * 40])
    assert {q: _scores(mem_home, q) for q in queries} == alone


def test_scope_bm25_is_fts5_bm25_when_the_scope_is_the_whole_index(mem_home: Path) -> None:
    from memory.storage.sqlite import keyword_stats

    with _open(mem_home, "bob") as bob:
        for text in [*BOB_NOTES, "quux " * 30, "zorblax zorblax zorblax quux"]:
            bob.remember(text)
        st = keyword_stats.stats(bob.conn, bob.readable_profiles())
        assert st.whole and st.rows == len(BOB_NOTES) + 2
        for phrase in ('content : "zorblax"', 'content : "quux"', 'content : "zorblax quux"'):
            rows = bob.conn.execute(
                "SELECT f.rowid, -bm25(memories_fts), d.sz FROM memories_fts f "
                "JOIN memories_fts_docsize d ON d.id = f.rowid WHERE memories_fts MATCH ?",
                [phrase],
            ).fetchall()
            assert rows
            # recomputed from the scope's statistics: bit for bit bm25's
            assert keyword_stats.rescore(bob.conn, phrase, rows, st) == {r[0]: r[1] for r in rows}


def test_keyword_statistics_follow_every_write(mem_home: Path) -> None:
    from memory.storage.sqlite import keyword_stats

    with _open(mem_home, "alice") as alice:
        first = alice.remember("alice one two three").id
        alice.remember("alice four")
        alice.update_memory(first, "alice one two three four five six")
        cid = alice.new_conversation()
        alice.log_message(cid, "user", "a message of alice")
    with _open(mem_home, "bob") as bob:
        gone = bob.remember("bob one").id
        bob.remember("bob two words")
        forget(bob, [gone])
        before = bob.conn.execute("SELECT * FROM fts_stats ORDER BY profile").fetchall()
        keyword_stats.rebuild(bob.conn)
        after = bob.conn.execute("SELECT * FROM fts_stats ORDER BY profile").fetchall()
        assert before == after
        assert [r[:2] for r in after] == [("alice", 3), ("bob", 1)]


@pytest.mark.parametrize("command", ["forget", "show"])
def test_an_id_too_large_for_sqlite_is_simply_not_found(
    cli: Any, command: str, mem_home: Path
) -> None:
    cli("remember", "kept")
    huge = str(2**64)
    with _open(mem_home, "default") as store:  # the engine too, not only the CLI
        with pytest.raises(NotFoundError):
            forget(store, [2**64])
        with pytest.raises(NotFoundError):
            store.history(2**64)
        assert store.message(2**64) is None and store.delete_memories([2**64], reason="x") == 0
    # The CLI range-checks the number first (one line naming the bound, exit 2).
    result = cli(command, huge, *(["--yes"] if command == "forget" else []), code=2)
    assert result.stderr.strip() == (
        f"Error: Invalid ID {huge}: use a whole number of at most {2**63 - 1}."
    )
    assert [m["content"] for m in cli.json("list")] == ["kept"]


def test_scores_after_forgetting_are_those_of_a_file_that_never_had_the_row(
    tmp_path: Path,
) -> None:
    """FTS5 keeps counting a deleted row in its totals; the scope's own
    statistics do not, so forgetting leaves no trace in the ranking either."""
    from memory.retrieval.ranking import Ranking
    from memory.retrieval.search import search

    def scores(store: MemoryStore) -> dict[str, float]:
        hits = search(store, "zorblax quux", limit=20, ranking=Ranking(recency_weight=0.0))
        return {h.content: h.score for h in hits}

    gone = "zorblax quux zorblax quux zorblax, a note to forget"
    with MemoryStore.open(tmp_path / "one.db") as one, MemoryStore.open(tmp_path / "two.db") as two:
        for text in BOB_NOTES:
            one.add_memory(text, created_at=STAMP)
            if text == BOB_NOTES[2]:
                forget(one, [one.add_memory(gone, created_at=STAMP)])
            two.add_memory(text, created_at=STAMP)
        assert gone not in scores(one)
        assert scores(one) == scores(two)
