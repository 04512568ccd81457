"""The storage seam's lifecycle calls (the end of memory/storage/protocol.py):
retention's selections and deletion, message tags, a document's chunks, and a
narrowing scrub, for every backend of tests/storage_harness.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from storage_harness import ALICE, ALL, BACKENDS, BOB, Harness, add, row_of, say

from memory.storage import DocumentInfo, MemoryPatch, NewEvent, NewMessage, StorageBackend


@pytest.fixture(params=sorted(BACKENDS))
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    harness: Harness = BACKENDS[request.param](tmp_path)
    backend = harness.new()
    yield backend
    backend.close()


def test_selections_see_only_the_scopes_own_rows(db: StorageBackend) -> None:
    old = add(db, ALICE, "an old fact", created_at="2020-01-01T00:00:00Z")
    new = add(db, ALICE, "a new fact", created_at="2030-01-01T00:00:00Z")
    note = add(db, ALICE, "an old note", kind="instruction", created_at="2020-01-01T00:00:00Z")
    add(db, BOB, "bob's old fact", created_at="2020-01-01T00:00:00Z")
    assert db.memory_ids(ALICE) == [old, new, note]
    assert db.memory_ids(ALICE, kind="fact", before="2025-01-01T00:00:00Z") == [old]
    gone = add(db, ALICE, "expired", expires_at="2021-01-01T00:00:00Z")
    add(db, BOB, "bob's expired", expires_at="2021-01-01T00:00:00Z")
    assert db.expired_ids(ALICE, "2022-01-01T00:00:00Z") == [gone]
    db.add_conversation(ALICE, "c")
    first = db.add_message(ALICE, NewMessage("c", "user", "hi", created_at="2020-01-01T00:00:00Z"))
    later = db.add_message(ALICE, NewMessage("c", "user", "yo", created_at="2030-01-01T00:00:00Z"))
    say(db, BOB, "b", "bob speaks")
    assert db.message_ids(ALICE) == [first, later]
    assert db.message_ids(ALICE, before="2025-01-01T00:00:00Z") == [first]


def test_used_ids_are_the_scopes_current_memories_most_used_first(db: StorageBackend) -> None:
    once = add(db, ALICE, "used once")
    thrice = add(db, ALICE, "used thrice")
    add(db, ALICE, "never used")
    old = add(db, ALICE, "used, then superseded")
    bobs = add(db, BOB, "bob's, used")
    at = "2030-01-01T00:00:00+00:00"
    for ids in ([once, thrice, old, bobs], [thrice, old], [thrice]):
        db.touch(ALICE, ids, at)
    db.touch(BOB, [bobs], at)
    db.update_memory(ALICE, old, MemoryPatch(superseded_by=thrice))
    assert db.used_ids(ALICE) == [thrice, once]
    assert db.used_ids(ALICE, min_uses=2) == [thrice]
    assert db.used_ids(BOB) == [bobs]


def test_expire_deletes_messages_with_their_index_rows_only(db: StorageBackend) -> None:
    message = say(db, ALICE, "c", "I moved to Oslo")
    row = row_of(db, ALICE, message)
    fact = add(db, ALICE, "lives in Oslo", source="extraction", source_message_id=message)
    old = add(db, ALICE, "an old fact")
    bobs = add(db, BOB, "bob's fact")
    db.expire(ALICE, [old, bobs], [message])
    left = [m.id for m in db.list_memories(ALICE, ALL)]
    assert left == [fact]  # a derived fact keeps its own retention
    assert db.message(ALICE, message) is None
    assert db.memory(BOB, bobs).content == "bob's fact"
    forgot = [e for e in db.events(ALICE, row) if e.event == "forget"]
    assert forgot[0].detail["with_source"] is True


def test_message_tags(db: StorageBackend) -> None:
    one = say(db, ALICE, "c", "one")
    two = say(db, ALICE, "c", "two")
    assert [m.id for m in db.untagged_messages(ALICE, "c", "fact_keys")] == [one, two]
    db.tag_messages(ALICE, [one], "fact_keys")
    db.tag_messages(BOB, [two], "fact_keys")  # not bob's: nothing changes
    assert [m.id for m in db.untagged_messages(ALICE, "c", "fact_keys")] == [two]
    assert db.untagged_messages(BOB, "c", "fact_keys") == []


def test_document_chunks_and_touch(db: StorageBackend) -> None:
    info = DocumentInfo("/d/a.md", "markdown", "h1", 10, 1.0, 1, "v1")
    db.put_document(ALICE, info)
    chunk = add(db, ALICE, "a chunk", kind="document", metadata={"path": "/d/a.md"})
    add(db, BOB, "bob's chunk", kind="document", metadata={"path": "/d/a.md"})
    assert db.document_chunks(ALICE, "/d/a.md") == [chunk]
    db.touch_document(ALICE, "/d/a.md", size=-1)
    [doc] = db.documents(ALICE, path="/d/a.md")
    assert (doc.size, doc.mtime) == (-1, 1.0)
    db.touch_document(ALICE, "/d/a.md", size=12, mtime=2.0)
    [doc] = db.documents(ALICE, path="/d/a.md")
    assert (doc.size, doc.mtime) == (12, 2.0)
    db.checkpoint(ALICE)


@dataclass(frozen=True)
class _Narrow:
    needles: tuple[str, ...]

    def __call__(self, text: str) -> bool:
        return "oslo" in text.lower()


def test_a_narrowing_scrub_blanks_what_it_matches(db: StorageBackend) -> None:
    db.add_conversation(ALICE, "c", title="Trip to Oslo")
    gone = add(db, ALICE, "a note")
    kept = add(db, ALICE, "Oslo in May")
    db.add_event(ALICE, NewEvent(kept, "add", after={"content": "Oslo in May"}))
    db.add_event(ALICE, NewEvent(kept, "update", after={"content": "Bergen"}))
    result = db.forget(ALICE, [gone], scrub=_Narrow(("oslo",)))
    assert result.titles == ["c"]
    assert result.events == 1
