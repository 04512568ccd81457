"""The storage seam's behaviour, written once against the protocol: scope,
keyword scores, vectors, filters, records. Every test runs against each
backend of tests/storage_harness.py (SQLite on a temporary file, the in-memory
double, PostgreSQL on a real server). Lineage, forgetting, scrubbing
and transactions: tests/test_storage_lineage.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from storage_harness import ALICE, ALL, BACKENDS, BOB, SYSTEM, Harness, add, row_of, say, vec

from memory.errors import NotFoundError, UsageError
from memory.storage import (
    DocumentInfo,
    MemoryFilter,
    MemoryPatch,
    NewEvent,
    NewMemory,
    NewMessage,
    Scope,
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


# --------------------------------------------------------------------- scope
def test_backends_implement_the_protocol(db: StorageBackend) -> None:
    assert isinstance(db, StorageBackend)


def test_another_profiles_row_is_answered_like_a_missing_one(db: StorageBackend) -> None:
    secret = add(db, ALICE, "alice keeps her spare key under the blue flowerpot")
    missing = secret + 1000

    def error(call: Callable[[], object]) -> str:
        with pytest.raises(NotFoundError) as err:
            call()
        return str(err.value)

    for scope_call in (
        lambda i: db.memory(BOB, i),
        lambda i: db.update_memory(BOB, i, MemoryPatch(importance=0.9)),
        lambda i: db.events(BOB, i),
        lambda i: db.forget(BOB, [i]),
        lambda i: db.add_event(BOB, NewEvent(i, "update")),
    ):
        hidden = error(lambda c=scope_call: c(secret))  # type: ignore[misc]
        absent = error(lambda c=scope_call: c(missing))  # type: ignore[misc]
        assert hidden.replace(str(secret), "N") == absent.replace(str(missing), "N")
        assert "alice" not in hidden
    assert db.memories(BOB, [secret]) == []
    assert db.list_memories(BOB, ALL) == []
    assert db.delete_memories(BOB, [secret], reason="test") == []
    assert db.counts(BOB).kinds == {}
    db.touch(BOB, [secret], "2030-01-01T00:00:00+00:00")
    assert db.memory(ALICE, secret).use_count == 0
    assert db.keyword_scores(BOB, "flowerpot", ALL) == {}
    assert db.keyword_match(BOB, ["flowerpot"], ALL) == []
    assert db.keyword_stats(BOB).rows == 0
    assert db.nearest(BOB, vec("spare key flowerpot"), ALL, k=5) == {}
    assert db.similarities(BOB, vec("spare key"), [secret]) == {}


def test_references_never_cross_profiles(db: StorageBackend) -> None:
    message = say(db, ALICE, "c-1", "my bank is in Zurich")
    row = row_of(db, ALICE, message)
    fact = add(db, ALICE, "alice banks in Zurich")
    errors: list[str] = []
    for call in (
        lambda: add(db, BOB, "stolen lineage", source_message_id=message),
        lambda: add(db, BOB, "stolen conversation", conversation="c-1"),
        lambda: db.add_message(BOB, NewMessage("c-1", "user", "hello")),
        lambda: db.update_memory(BOB, add(db, BOB, "bob fact"), MemoryPatch(superseded_by=fact)),
    ):
        with pytest.raises(NotFoundError) as err:
            call()
        errors.append(str(err.value))
    with pytest.raises(UsageError) as taken:
        db.add_conversation(BOB, "c-1")
    errors.append(str(taken.value))
    assert not any("alice" in e.lower() for e in errors), errors
    assert db.message(BOB, message) is None
    assert db.messages(BOB, "c-1") == []
    assert db.conversation(BOB, "c-1") is None
    assert db.lineage(BOB, [message]).memories == ()
    assert db.session_neighbours(BOB, [row], 3, ALL) == {}
    assert db.set_summary(BOB, "c-1", "hijacked", 1) is False
    assert db.conversation(ALICE, "c-1").summary is None  # type: ignore[union-attr]


def test_shared_namespace_is_read_never_written(db: StorageBackend) -> None:
    db.put_document(SYSTEM, DocumentInfo("guide.md", "markdown", "h1", 10, 1.0, 1, "v1"))
    chunk = add(db, SYSTEM, "the install guide says run make", kind="document",
                source="document", metadata={"path": "guide.md"})  # fmt: skip
    assert db.memory(ALICE, chunk).profile == "system"
    assert [d.path for d in db.documents(ALICE)] == ["guide.md"]
    assert chunk in db.keyword_scores(ALICE, "install", ALL)
    assert chunk in db.nearest(ALICE, vec("the install guide says run make"), ALL, k=3)
    with pytest.raises(NotFoundError):
        db.update_memory(ALICE, chunk, MemoryPatch(importance=0.1))
    with pytest.raises(NotFoundError):
        db.forget(ALICE, [chunk])
    with pytest.raises(NotFoundError):
        db.add_event(ALICE, NewEvent(chunk, "update"))
    assert db.delete_memories(ALICE, [chunk], reason="x") == []
    assert db.remove_document(ALICE, "guide.md", reason="x") == 0
    assert db.memory(SYSTEM, chunk).importance == 0.5
    private = Scope("alice")  # no shared namespaces: the document is not there
    assert db.memories(private, [chunk]) == [] and db.documents(private) == []
    assert db.remove_document(SYSTEM, "guide.md", reason="gone") == 1
    assert db.memories(SYSTEM, [chunk]) == [] and db.documents(SYSTEM) == []


# ------------------------------------------------------------------- keyword
ALICE_NOTES = [
    "the garden needs water on monday",
    "water the tomatoes in the garden",
    "call mum about the garden party",
    "pay the water bill before friday",
    "book a table for friday dinner",
]


def test_keyword_scores_ignore_other_profiles(harness: Harness) -> None:
    alone, crowded = harness.new(), harness.new()
    for i in range(30):  # bob's rows first: they would shift ids, df and lengths
        add(crowded, BOB, f"water water garden item {i} " + "filler " * (i % 7))
    for db in (alone, crowded):
        for text in ALICE_NOTES:
            add(db, ALICE, text)

    def by_text(db: StorageBackend, term: str) -> dict[str, float]:
        scores = db.keyword_scores(ALICE, term, ALL, limit=100)
        return {m.content: scores[m.id] for m in db.memories(ALICE, scores)}

    for term in ("water", "garden", "friday", "water bill"):
        one, two = by_text(alone, term), by_text(crowded, term)
        assert one and one.keys() == two.keys()
        for text, score in one.items():
            assert two[text] == pytest.approx(score, rel=1e-9), (term, text)
    assert alone.keyword_stats(ALICE) == crowded.keyword_stats(ALICE)


def test_keyword_scores_behave_like_bm25(db: StorageBackend) -> None:
    ids = [add(db, ALICE, t) for t in ALICE_NOTES]
    rare = db.keyword_scores(ALICE, "tomatoes", ALL)
    common = db.keyword_scores(ALICE, "water", ALL)
    assert list(rare) == [ids[1]]
    assert set(common) == {ids[0], ids[1], ids[3]}
    assert rare[ids[1]] > common[ids[1]] > 0  # rarer terms weigh more
    gardens = db.keyword_scores(ALICE, "gardens", ALL)  # stemmed
    assert gardens.keys() == db.keyword_scores(ALICE, "garden", ALL).keys() == set(ids[:3])
    best = max(common, key=lambda i: common[i])
    assert list(db.keyword_scores(ALICE, "water", ALL, limit=1)) == [best]
    assert set(db.keyword_scores(ALICE, "water", ALL, newest=2)) == {ids[1], ids[3]}
    assert list(db.keyword_scores(ALICE, "garden party", ALL)) == [ids[2]]  # a phrase
    assert db.keyword_scores(ALICE, "party garden", ALL) == {}
    spoken = add(db, ALICE, "hello there", speaker="priya")
    assert db.keyword_scores(ALICE, "priya", ALL) == {}
    assert list(db.keyword_scores(ALICE, "priya", ALL, column="speaker")) == [spoken]
    assert db.keyword_match(ALICE, ["garden", "water"], ALL) == [ids[0], ids[1]]


# -------------------------------------------------------------------- vectors
@pytest.mark.parametrize("exact", [True, False, None])
def test_nearest_returns_only_rows_in_scope(db: StorageBackend, exact: bool | None) -> None:
    query = "where did I park the car"
    theirs = [add(db, BOB, query) for _ in range(5)]  # identical to the query
    mine = [add(db, ALICE, t) for t in ("I parked the car on level 3", "the car is blue")]
    found = db.nearest(ALICE, vec(query), ALL, k=10, exact=exact)
    assert set(found) <= set(mine) and found
    assert not set(found) & set(theirs)
    sims = db.similarities(ALICE, vec(query), theirs + mine)
    assert set(sims) == set(mine)
    assert all(-1.0 <= s <= 1.0 + 1e-9 for s in sims.values())
    assert db.nearest(BOB, vec(query), ALL, k=2, exact=exact).keys() <= set(theirs)
    assert max(db.nearest(BOB, vec(query), ALL, k=1, exact=exact).values()) == pytest.approx(1.0)


# ------------------------------------------------------------------ filters
def test_filters_apply_to_every_read(db: StorageBackend) -> None:
    db.add_conversation(ALICE, "trip")
    old = add(db, ALICE, "plan the trip to Lisbon", created_at="2024-01-05T10:00:00+00:00",
              metadata={"tags": ["travel"], "path": "notes/trip.md"})  # fmt: skip
    new = add(db, ALICE, "trip photos from Lisbon", created_at="2024-03-01T10:00:00+00:00",
              conversation="trip", kind="episode", metadata={"path": "photos/lisbon"})  # fmt: skip
    gone = add(db, ALICE, "trip budget for Lisbon", created_at="2024-02-01T10:00:00+00:00")
    db.update_memory(ALICE, gone, MemoryPatch(superseded_by=new))
    expired = add(db, ALICE, "Lisbon trip hotel code", expires_at="2000-01-01T00:00:00+00:00")
    cases: list[tuple[MemoryFilter, set[int]]] = [
        (MemoryFilter(), {old, new}),
        (MemoryFilter(include_inactive=True), {old, new, gone, expired}),
        (MemoryFilter(kinds=("episode",)), {new}),
        (MemoryFilter(exclude_kinds=("episode",)), {old}),
        (MemoryFilter(since="2024-02-01T00:00:00+00:00"), {new}),
        (MemoryFilter(until="2024-02-01T00:00:00+00:00", include_inactive=True), {old}),
        (MemoryFilter(conversation="trip"), {new}),
        (MemoryFilter(where=(("path", "~=", "notes/"),)), {old}),
        (MemoryFilter(where=(("path", "=", "photos/lisbon"),)), {new}),
        (
            MemoryFilter(where=(("path", "!=", "photos/lisbon"),), include_inactive=True),
            {old, gone, expired},
        ),  # fmt: skip
        (MemoryFilter(where=(("tags", "~=", "travel"),)), {old}),
        (MemoryFilter(exclude_ids=(old,)), {new}),
    ]
    for f, want in cases:
        assert {m.id for m in db.list_memories(ALICE, f)} == want, f
        assert set(db.keyword_scores(ALICE, "lisbon", f)) == want, f
        assert set(db.nearest(ALICE, vec("trip Lisbon"), f, k=10, exact=True)) == want, f
        assert set(db.nearest(ALICE, vec("trip Lisbon"), f, k=10, exact=False)) == want, f
    assert [m.id for m in db.list_memories(ALICE, ALL, limit=2)] == [expired, gone]


def test_session_neighbours_walk_one_conversation(db: StorageBackend) -> None:
    rows = [row_of(db, ALICE, say(db, ALICE, "chat", f"turn number {i}")) for i in range(6)]
    say(db, ALICE, "other", "elsewhere")
    near = db.session_neighbours(ALICE, [rows[2]], 2, ALL)
    assert near == {rows[2]: [(rows[1], -1), (rows[0], -2), (rows[3], 1), (rows[4], 2)]}
    skip = MemoryFilter(exclude_ids=(rows[3],))
    assert db.session_neighbours(ALICE, [rows[2]], 2, skip)[rows[2]][2:] == [(rows[4], 2)]
    fact = add(db, ALICE, "not a message")
    assert db.session_neighbours(ALICE, [fact], 2, ALL) == {}


# ------------------------------------------------- records round the seam
def test_memories_round_trip_and_update(db: StorageBackend) -> None:
    db.add_conversation(ALICE, "c")
    mid = add(db, ALICE, "cat is called Miso", importance=0.8, confidence=0.7, speaker="me",
              conversation="c", external_id="x1", metadata={"tags": ["pets"]},
              created_at="2024-05-01T10:00:00+00:00")  # fmt: skip
    m = db.memory(ALICE, mid)
    assert (m.profile, m.kind, m.content, m.importance, m.confidence) == (
        "alice", "fact", "cat is called Miso", 0.8, 0.7)  # fmt: skip
    assert (m.speaker, m.conversation, m.external_id, m.metadata) == (
        "me", "c", "x1", {"tags": ["pets"]})  # fmt: skip
    assert m.created_at == "2024-05-01T10:00:00+00:00" and m.active
    updated = db.update_memory(ALICE, mid, MemoryPatch(content="cat is called Mochi"),
                               vec("cat is called Mochi"))  # fmt: skip
    assert updated.content == "cat is called Mochi"
    assert list(db.keyword_scores(ALICE, "mochi", ALL)) == [mid]
    assert db.keyword_scores(ALICE, "miso", ALL) == {}
    db.touch(ALICE, [mid, mid + 99], "2030-01-01T00:00:00+00:00")
    assert db.memory(ALICE, mid).use_count == 1
    with pytest.raises(UsageError):
        add(db, ALICE, "bad kind", kind="rumour")
    with pytest.raises(UsageError):
        db.add_memory(ALICE, NewMemory("short vector"), [1.0])
    add(db, ALICE, "old", kind="instruction")
    counts = db.counts(ALICE)
    assert counts.kinds == {"fact": (1, 0), "instruction": (1, 0)}
    assert (counts.messages, counts.conversations) == (0, 1)


def test_conversations_and_messages(db: StorageBackend) -> None:
    assert db.add_conversation(ALICE, "c", title="first", created_at="2024-01-01T00:00:00+00:00")
    assert db.add_conversation(ALICE, "c") is False
    ids = [db.add_message(ALICE, NewMessage("c", "user", f"m{i}")) for i in range(4)]
    assert [m.content for m in db.messages(ALICE, "c")] == ["m0", "m1", "m2", "m3"]
    assert [m.id for m in db.messages(ALICE, "c", limit=2)] == ids[2:]
    assert [m.id for m in db.messages(ALICE, "c", after_id=ids[0])] == ids[1:]
    conv = db.conversation(ALICE, "c")
    assert conv is not None and conv.messages == 4 and conv.title == "first"
    db.add_conversation(ALICE, "d", created_at="2020-01-01T00:00:00+00:00")
    assert [c.id for c in db.conversations(ALICE)][0] == "c"
    assert db.set_title(ALICE, "c", "renamed") and db.set_summary(ALICE, "c", "s", ids[1])
    conv = db.conversation(ALICE, "c")
    assert conv is not None and (conv.title, conv.summary, conv.summary_upto) == (
        "renamed", "s", ids[1])  # fmt: skip
    with pytest.raises(NotFoundError):
        db.add_message(ALICE, NewMessage("nope", "user", "x"))
