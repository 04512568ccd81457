"""The storage seam's transfer calls (``mem export`` / ``mem import``) for
every backend of tests/storage_harness.py: streams of the scope's own rows in
order, the look-ups an import makes, and what it restores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_harness import ALICE, ALL, BACKENDS, BOB, Harness, add, row_of, say, vec

from memory.errors import NotFoundError, UsageError
from memory.storage import (
    Document,
    DocumentInfo,
    MemoryFilter,
    NewMemory,
    NewMessage,
    StorageBackend,
)
from memory.storage.transfer import MemoryTimes


@pytest.fixture(params=sorted(BACKENDS))
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    harness: Harness = BACKENDS[request.param](tmp_path)
    backend = harness.new()
    yield backend
    backend.close()


def test_streams_hold_the_scopes_own_rows_in_order(db: StorageBackend) -> None:
    db.add_conversation(ALICE, "b")
    db.add_conversation(ALICE, "a")
    say(db, BOB, "x", "bob's message")
    one = db.add_message(ALICE, NewMessage("a", "user", "hi", import_key="k1", metadata={"n": 1}))
    two = db.add_message(ALICE, NewMessage("b", "user", "yo", external_id="e2"))
    fact = add(db, ALICE, "a fact")
    add(db, BOB, "bob's fact")
    db.put_document(ALICE, DocumentInfo("/z.md", "markdown", "h", 1, 1.0, 0, "v1"))
    db.put_document(ALICE, DocumentInfo("/a.md", "markdown", "h", 1, 1.0, 0, "v1"))
    assert [c.id for c in db.iter_conversations(ALICE)] == ["b", "a"]
    messages = list(db.iter_messages(ALICE))
    assert [(m.id, m.import_key, m.metadata) for m in messages] == [
        (one, "k1", {"n": 1}),
        (two, None, {}),
    ]
    assert messages[1].external_id == "e2"
    assert [m.id for m in db.iter_memories(ALICE, ALL)] == [fact]
    no_facts = MemoryFilter(include_inactive=True, exclude_kinds=("fact",))
    assert list(db.iter_memories(ALICE, no_facts)) == []
    assert [d.path for d in db.iter_documents(ALICE)] == ["/z.md", "/a.md"]
    assert db.import_key(ALICE, one) == "k1" and db.import_key(BOB, one) is None
    assert db.import_keys(ALICE) == {"k1"} and db.import_keys(BOB) == set()
    found = db.message_by_key(ALICE, "k1")
    assert found is not None and found.id == one
    assert db.message_by_key(BOB, "k1") is None


def test_an_imports_lookups_and_restores(db: StorageBackend) -> None:
    old = add(db, ALICE, "same text", created_at="2020-01-01T00:00:00Z")
    new = add(db, ALICE, "same text")
    add(db, BOB, "same text")
    assert db.find_memories(ALICE, kind="fact", content="same text") == [old, new]
    stamp = "2020-01-01T00:00:00Z"
    assert db.find_memories(ALICE, kind="fact", content="same text", created_at=stamp) == [old]
    times = MemoryTimes(updated_at="2021-01-01T00:00:00Z", use_count=3, valid_until=stamp)
    db.restore_times(ALICE, old, times)
    got = db.memory(ALICE, old)
    assert (got.updated_at, got.use_count, got.valid_until) == (times.updated_at, 3, stamp)
    db.link_superseded(ALICE, old, new)
    db.link_superseded(ALICE, old, old)  # names one already: kept
    assert db.memory(ALICE, old).superseded_by == new
    db.add_conversation(ALICE, "c", title="kept")
    assert db.restore_conversation(ALICE, "c", title="other", summary="a summary")
    assert not db.restore_conversation(ALICE, "c", summary="another")
    db.restore_conversation(ALICE, "c", summary_upto=7)
    conv = db.conversation(ALICE, "c")
    assert conv is not None and (conv.title, conv.summary, conv.summary_upto) == (
        "kept",
        "a summary",
        7,
    )
    doc = Document("/a.md", "x", "markdown", "h", 1, 1.0, 0, "v1", "2020", "2021")
    assert db.import_document(ALICE, doc) and not db.import_document(ALICE, doc)
    [stored] = db.documents(ALICE, path="/a.md")
    assert (stored.profile, stored.added_at, stored.updated_at) == ("alice", "2020", "2021")


def test_replace_message_drops_its_index_row(db: StorageBackend) -> None:
    message = say(db, ALICE, "c", "the old text")
    row = row_of(db, ALICE, message)
    new = NewMessage("c", "assistant", "the new text", metadata={"m": 1})
    stamp = db.replace_message(ALICE, message, new, reason="replaced by import", actor="import")
    got = db.message(ALICE, message)
    assert got is not None and (got.content, got.role, got.created_at) == (
        "the new text",
        "assistant",
        stamp,
    )
    assert [m.id for m in db.list_memories(ALICE, ALL)] == []
    forgot = db.events(ALICE, row)[-1]
    assert (forgot.event, forgot.actor, forgot.detail["reason"]) == (
        "forget",
        "import",
        "replaced by import",
    )
    assert db.replace_message(BOB, message, new, reason="x", actor="import") is None


def test_a_batch_of_messages_is_what_one_by_one_would_write(db: StorageBackend) -> None:
    """``add_messages``: each message, its memory linked to it (or none), the
    conversation's last update, as ``add_message`` + ``add_memory`` would."""
    db.add_conversation(ALICE, "a", created_at="2020-01-01T00:00:00Z")
    say(db, BOB, "b", "bob's own")
    batch = [
        (
            NewMessage(
                "a",
                "user",
                f"line {n}",
                created_at=f"2021-01-0{n}T00:00:00Z",
                speaker="Ann",
                import_key=f"k{n}",
                metadata={"n": n},
            ),
            None
            if n == 2
            else NewMemory(
                f"line {n}",
                kind="message",
                source="message:user",
                conversation="a",
                speaker="Ann",
                created_at=f"2021-01-0{n}T00:00:00Z",
            ),
            vec(f"line {n}"),
        )  # fmt: skip
        for n in (1, 2, 3)
    ]
    ids = db.add_messages(ALICE, batch)
    assert [m.id for m in db.iter_messages(ALICE)] == ids and len(set(ids)) == 3
    assert db.import_keys(ALICE) == {"k1", "k2", "k3"}
    rows = {m.source_message_id: m for m in db.iter_memories(ALICE, ALL)}
    assert sorted(rows) == [ids[0], ids[2]] and rows[ids[2]].content == "line 3"
    assert rows[ids[0]].kind == "message" and rows[ids[0]].speaker == "Ann"
    assert set(db.keyword_scores(ALICE, "line", ALL)) == {rows[ids[0]].id, rows[ids[2]].id}
    conversation = db.conversation(ALICE, "a")
    assert conversation is not None and conversation.updated_at >= "2021-01-03"
    assert db.add_messages(ALICE, []) == []
    with pytest.raises(NotFoundError):
        db.add_messages(ALICE, [(NewMessage("b", "user", "into bob's"), None, vec("x"))])
    # A memory every backend refuses alone is refused in a batch, in the same
    # words, and the batch writes nothing.
    for bad, words in (
        (NewMemory("  "), "Nothing to remember"),
        (NewMemory("x", kind="odd"), "Unknown kind"),
    ):
        with pytest.raises(UsageError, match=words):
            db.add_messages(ALICE, [(NewMessage("a", "user", "line 4"), bad, vec("x"))])
    assert [m.id for m in db.iter_messages(ALICE)] == ids
