"""The seam's calls for the store and retrieval (briefs, speakers, row_bound,
taken, message_id, event, reindex), written once and run on each backend of
tests/storage_harness.py: SQLite, the in-memory double, PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_harness import ALICE, ALL, BACKENDS, BOB, DIM, Harness, add, row_of, say, vec

from memory.errors import NotFoundError
from memory.storage import MemoryFilter, NewEvent, NewMessage, StorageBackend


@pytest.fixture(params=sorted(BACKENDS))
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    harness: Harness = BACKENDS[request.param](tmp_path)
    backend = harness.new()
    yield backend
    backend.close()


def test_briefs_keep_the_order_of_ids_and_the_scope(db: StorageBackend) -> None:
    a = add(db, ALICE, "alice likes green tea", importance=0.7)
    b = add(db, ALICE, "alice walks the dog", kind="episode")
    theirs = add(db, BOB, "bob plays chess")
    found = db.briefs(ALICE, [b, theirs, a, 10**6], ALL)
    assert [f[0] for f in found] == [b, a]
    assert found[1][1] == "fact" and found[1][5] == pytest.approx(0.7)
    assert [f[0] for f in db.briefs(ALICE, [a, b], MemoryFilter(kinds=("episode",)))] == [b]


def test_speakers_match_the_speaker_column_within_the_scope(db: StorageBackend) -> None:
    say(db, ALICE, "c1", "hello there")
    add(db, BOB, "a word from melanie", speaker="Melanie")
    add(db, ALICE, "notes of caroline", speaker="Caroline")
    assert db.speakers(ALICE, "caroline", ALL) == ["Caroline"]
    assert db.speakers(ALICE, "melanie", ALL) == []  # bob's row is not alice's
    assert db.speakers(ALICE, "tea", ALL) == []


def test_row_bound_covers_the_scope(db: StorageBackend) -> None:
    for i in range(3):
        add(db, ALICE, f"memory number {i}")
    assert db.row_bound(ALICE) >= 3


def test_taken_and_message_id_say_nothing_of_whose(db: StorageBackend) -> None:
    db.add_conversation(BOB, "bobs")
    mid = db.add_message(BOB, NewMessage("bobs", "user", "hi", import_key="k1"))
    assert db.taken(ALICE, conversation="bobs")
    assert not db.taken(BOB, conversation="bobs")
    assert not db.taken(ALICE, conversation="nobody")
    assert db.taken(ALICE, import_key="k1") and not db.taken(BOB, import_key="k1")
    assert db.message_id(BOB, "k1") == mid
    assert db.message_id(ALICE, "k1") is None


def test_event_of_a_readable_memory_only(db: StorageBackend) -> None:
    m = add(db, ALICE, "alice owns a red bike")
    e = db.add_event(ALICE, NewEvent(m, "add", after={"content": "alice owns a red bike"}))
    found = db.event(ALICE, e)
    assert found is not None and found.id == e and found.memory_id == m
    try:  # another scope's event: not shown (SQLite says so as for a missing memory)
        assert db.event(BOB, e) is None
    except NotFoundError:
        pass
    assert db.event(ALICE, 10**6) is None


def test_reindex_rebuilds_every_vector(db: StorageBackend) -> None:
    texts = ["the cat sat on the mat", "a dog in the fog", "bread and butter"]
    ids = [add(db, ALICE, t) for t in texts]
    mid = say(db, BOB, "c", "bob says something")
    calls: list[tuple[int, int]] = []

    def embed(batch: list[str]) -> list[list[float]]:
        return [list(reversed(vec(t))) for t in batch]

    total = db.reindex(
        ALICE, "toy-reversed", DIM, embed, progress=lambda d, t: calls.append((d, t)), batch=2
    )
    assert total == 4 and calls and calls[-1] == (4, 4)
    assert db.get_meta(ALICE, "embedder") == "toy-reversed"
    target = list(reversed(vec(texts[1])))
    assert next(iter(db.nearest(ALICE, target, ALL, k=1, exact=True))) == ids[1]
    assert db.similarities(ALICE, target, [ids[1]])[ids[1]] == pytest.approx(1.0)
    assert row_of(db, BOB, mid) in db.nearest(
        BOB, list(reversed(vec("bob says something"))), ALL, k=1
    )


def test_change_mark_moves_with_every_audited_change(db: StorageBackend) -> None:
    """The turn caches instructions and profile facts until this moves: an add,
    an update and a forget of a readable memory must each move it."""
    start = db.change_mark(ALICE)
    kept = add(db, ALICE, "prefers tea")
    db.add_event(ALICE, NewEvent(kept, "add", after={"content": "prefers tea"}))
    added = db.change_mark(ALICE)
    assert added > start
    assert db.change_mark(ALICE) == added  # reading does not move it
    db.delete_memories(ALICE, [kept], reason="test")
    assert db.change_mark(ALICE) > added


def test_namespaces_lists_every_profile_with_rows(db: StorageBackend) -> None:
    assert db.namespaces(ALICE) == []
    add(db, ALICE, "alice likes tea")
    say(db, BOB, "c-bob", "hello")
    assert db.namespaces(ALICE) == ["alice", "bob"]  # the owner's view: the whole store


def test_has_conversation_sees_only_the_scopes_own(db: StorageBackend) -> None:
    say(db, ALICE, "c-alice", "hello")
    assert db.has_conversation(ALICE, "c-alice")
    assert not db.has_conversation(BOB, "c-alice")  # answered like a missing one
    assert not db.has_conversation(ALICE, "c-none")
