"""The storage seam's behaviour, part two: ids, lineage-aware forgetting,
secure scrubbing, transactions, the audit trail and documents, for every
backend of tests/storage_harness.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_harness import ALICE, ALL, BACKENDS, BOB, Harness, add, row_of, say, vec

from memory.errors import NotFoundError, UsageError
from memory.storage import (
    DocumentInfo,
    MemoryPatch,
    NewEvent,
    NewMessage,
    StorageBackend,
)


@pytest.fixture(params=sorted(BACKENDS))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    return BACKENDS[request.param](tmp_path)


@pytest.fixture
def db(harness: Harness) -> Iterator[StorageBackend]:
    backend = harness.new()
    yield backend
    backend.close()


# ------------------------------------------------------------------------ ids
def test_ids_are_never_reused(db: StorageBackend) -> None:
    first = [add(db, ALICE, f"note {i}") for i in range(3)]
    bob = add(db, BOB, "bob's note")
    assert len(set(first + [bob])) == 4
    db.forget(ALICE, [first[-1]])
    db.delete_memories(BOB, [bob], reason="test")
    again = add(db, ALICE, "a later note")
    assert again > max(first + [bob])
    message = say(db, ALICE, "c", "a message to forget")
    db.forget(ALICE, [row_of(db, ALICE, message)])
    assert db.message(ALICE, message) is None
    assert db.add_message(ALICE, NewMessage("c", "user", "next")) > message
    with pytest.raises(NotFoundError):
        db.memory(ALICE, first[-1])
    assert [e.event for e in db.events(ALICE, first[-1])][-1] == "forget"


# -------------------------------------------------------------------- lineage
def test_forget_follows_lineage_from_a_message(db: StorageBackend) -> None:
    db.add_conversation(ALICE, "c")
    before = say(db, ALICE, "c", "good morning")
    message = say(db, ALICE, "c", "my new PIN is 4412 and I moved to Oslo")
    row = row_of(db, ALICE, message)
    fact = add(db, ALICE, "lives in Oslo", source="extraction", source_message_id=message)
    summary = add(db, ALICE, "they talked about moving to Oslo", kind="summary", conversation="c")
    keyed = add(db, ALICE, "city: Oslo", source="fact-key",
                metadata={"source_message_ids": [message]})  # fmt: skip
    updated = add(db, ALICE, "lives in Norway")
    db.update_memory(ALICE, updated, MemoryPatch(content="lives in Oslo, Norway"),
                     vec("lives in Oslo, Norway"))  # fmt: skip
    db.add_event(ALICE, NewEvent(updated, "update", before={"content": "lives in Norway"},
                                 after={"content": "lives in Oslo, Norway"},
                                 detail={"source_message": message}))  # fmt: skip
    kept = add(db, ALICE, "likes skiing")
    db.add_event(ALICE, NewEvent(kept, "ignore", after={"content": "moved to Oslo"},
                                 detail={"source_message": message}))  # fmt: skip
    db.set_summary(ALICE, "c", "morning; moved to Oslo", message)
    bobs = say(db, BOB, "b", "I moved to Oslo too")
    lineage = db.lineage(ALICE, [message])
    assert lineage.messages == (message,)
    assert set(lineage.memories) == {row, fact, summary, keyed, updated}

    result = db.forget(ALICE, [row])

    assert result.messages == [message]
    assert set(result.memories) == {row}
    assert set(result.derived) == {fact, summary, keyed, updated}
    assert result.summaries == ["c"] and result.events == 1
    assert any("4412" in t for t in result.texts)
    assert db.message(ALICE, message) is None
    assert db.memories(ALICE, [row, fact, summary, keyed, updated]) == []
    assert [m.id for m in db.memories(ALICE, [kept])] == [kept]
    assert all(e.after is None for e in db.events(ALICE, kept) if e.event == "ignore")
    assert db.conversation(ALICE, "c").summary is None  # type: ignore[union-attr]
    assert [m.id for m in db.messages(ALICE, "c")] == [before]
    assert db.message(BOB, bobs) is not None  # another profile's copy is its own


def test_forget_with_source_takes_the_message(db: StorageBackend) -> None:
    message = say(db, ALICE, "c", "remember I am allergic to peanuts")
    fact = add(db, ALICE, "allergic to peanuts", source_message_id=message)
    other = add(db, ALICE, "peanut allergy is severe", source_message_id=message)
    plain = db.forget(ALICE, [fact])
    assert plain.messages == [] and db.message(ALICE, message) is not None
    result = db.forget(ALICE, [other], with_source=True)
    assert result.messages == [message]
    assert db.message(ALICE, message) is None
    assert db.list_memories(ALICE, ALL) == []


def test_forget_restores_what_it_superseded(db: StorageBackend) -> None:
    old = add(db, ALICE, "works at Acme")
    new = add(db, ALICE, "works at Globex")
    db.update_memory(ALICE, old, MemoryPatch(superseded_by=new))
    assert not db.memory(ALICE, old).active
    result = db.forget(ALICE, [new])
    assert result.restored == [old]
    assert db.memory(ALICE, old).active
    assert "restore" in [e.event for e in db.events(ALICE, old)]


def test_forget_of_an_unknown_id_forgets_nothing(db: StorageBackend) -> None:
    keep = add(db, ALICE, "keep me")
    bobs = add(db, BOB, "bob's")
    with pytest.raises(NotFoundError):
        db.forget(ALICE, [keep, bobs])
    assert db.memory(ALICE, keep).content == "keep me"
    with pytest.raises(UsageError):
        db.forget(ALICE, [])


def test_forget_scrubs_copies_without_lineage(db: StorageBackend) -> None:
    db.add_conversation(ALICE, "c", title="planning the Tromso trip")
    db.set_summary(ALICE, "c", "we planned the Tromso trip", 10)
    target = add(db, ALICE, "flight to Tromso on May 3")
    other = add(db, ALICE, "a note")
    db.add_event(ALICE, NewEvent(other, "update", before={"content": "Tromso draft"}))
    db.add_conversation(BOB, "b", title="Tromso for bob")
    result = db.forget(ALICE, [target], scrub=lambda text: "tromso" in text.lower())
    assert result.titles == ["c"] and result.summaries == ["c"] and result.events >= 1
    conv = db.conversation(ALICE, "c")
    assert conv is not None and conv.title is None and conv.summary is None
    assert all(e.before is None for e in db.events(ALICE, other))
    assert db.conversation(BOB, "b").title == "Tromso for bob"  # type: ignore[union-attr]


def test_secure_scrub_leaves_no_text(harness: Harness) -> None:
    db = harness.new()
    token = "zqxjvlimerick"
    message = say(db, ALICE, "c", f"the vault word is {token}")
    fact = add(db, ALICE, f"vault word {token}", source_message_id=message)
    db.add_event(ALICE, NewEvent(fact, "add", after={"content": f"vault word {token}"}))
    for i in range(20):  # neighbours on the same pages
        add(db, ALICE, f"unrelated note number {i}")
    last = "qwvbnkestrel"  # written last: nothing written after it covers its bytes
    newest = add(db, ALICE, f"the newest word is {last}")
    assert token.encode() in harness.probe(db) and last.encode() in harness.probe(db)
    result = db.forget(ALICE, [fact, newest], with_source=True)
    assert not result.scrub_pending
    assert db.scrub(ALICE)
    probe = harness.probe(db)
    assert token.encode() not in probe and last.encode() not in probe
    assert all(e.before is None and e.after is None for e in db.events(ALICE, fact))
    db.close()


# --------------------------------------------------------------- transactions
def test_a_failed_transaction_leaves_nothing(db: StorageBackend) -> None:
    db.add_conversation(ALICE, "c")
    with pytest.raises(RuntimeError), db.transaction(ALICE):
        add(db, ALICE, "half written")
        db.add_message(ALICE, NewMessage("c", "user", "half said"))
        db.set_summary(ALICE, "c", "half summed", 1)
        raise RuntimeError("boom")
    assert db.list_memories(ALICE, ALL) == [] and db.messages(ALICE, "c") == []
    assert db.conversation(ALICE, "c").summary is None  # type: ignore[union-attr]
    with db.transaction(ALICE):
        outer = add(db, ALICE, "outer")
        with pytest.raises(NotFoundError), db.transaction(ALICE):
            add(db, ALICE, "inner")
            db.forget(ALICE, [10**6])
    assert [m.id for m in db.list_memories(ALICE, ALL)] == [outer]
    with pytest.raises(NotFoundError):
        add(db, ALICE, "dangling", source_message_id=10**6)
    assert len(db.list_memories(ALICE, ALL)) == 1


def test_events_undo_marks_and_documents(db: StorageBackend) -> None:
    mid = add(db, ALICE, "a fact")
    first = db.add_event(ALICE, NewEvent(mid, "add", after={"content": "a fact"},
                                         detail={"batch": "b1"}))  # fmt: skip
    second = db.add_event(ALICE, NewEvent(mid, "update", detail={"batch": "b2"}))
    assert [e.id for e in db.last_events(ALICE, events=("add", "update"), limit=5)] == [
        second, first]  # fmt: skip
    assert [e.id for e in db.last_events(ALICE, events=("add", "update"), batch="b1")] == [first]
    db.mark_event(ALICE, second, {"undone": 1})
    assert [e.id for e in db.last_events(ALICE, events=("add", "update"))] == [first]
    assert db.events(ALICE, mid)[-1].detail == {"batch": "b2", "undone": 1}
    with pytest.raises(NotFoundError):
        db.mark_event(BOB, first, {"undone": 1})
    assert db.last_events(BOB, events=("add", "update")) == []
    db.put_document(ALICE, DocumentInfo("a.md", "markdown", "h", 5, 1.0, 2, "v1"))
    db.put_document(ALICE, DocumentInfo("a.md", "markdown", "h2", 6, 2.0, 2, "v1"))
    (doc,) = db.documents(ALICE)
    assert (doc.hash, doc.profile, doc.chunks) == ("h2", "alice", 2)
    chunks = [add(db, ALICE, f"chunk {i}", kind="document", metadata={"path": "a.md"})
              for i in range(2)]  # fmt: skip
    assert db.documents(BOB, path="a.md") == []
    assert db.remove_document(BOB, "a.md", reason="x") == 0
    assert db.remove_document(ALICE, "a.md", reason="deleted") == 2
    assert db.memories(ALICE, chunks) == [] and db.documents(ALICE) == []
