"""The engine's search: filters, structure (neighbours, sessions), speakers,
time and answer kinds, plain facts, and the embedder's determinism."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memory.errors import UsageError
from memory.models.embed import get_embedder, pack
from memory.retrieval.query import answer_kind, parse_query
from memory.retrieval.ranking import KNN_ROWS, Ranking
from memory.retrieval.search import Filters, find, make_filters, search
from memory.store import MemoryStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    with MemoryStore.open(tmp_path / "m.db") as s:
        yield s


def chat(store: MemoryStore, conversation: str, stamp: str, turns: list[tuple[str, str]]) -> None:
    """Log one session: every turn gets the session's timestamp, as imports do."""
    if not store.conversation_exists(conversation):
        store.new_conversation(conversation_id=conversation, created_at=stamp)
    for number, (speaker, text) in enumerate(turns, start=1):
        store.log_message(
            conversation,
            "user" if number % 2 else "assistant",
            text,
            speaker=speaker,
            created_at=stamp,
            external_id=f"{stamp[:10]}:{number}",
        )


def contents(hits: list[object]) -> list[str]:
    return [h.content for h in hits]  # type: ignore[attr-defined]


# ------------------------------------------------------------------ filters
def test_kind_conversation_and_time_filters(store: MemoryStore) -> None:
    store.remember("The harbour ferry leaves at noon")
    chat(store, "c1", "2023-03-01T10:00:00", [("Ana", "The harbour ferry was late again")])
    chat(store, "c2", "2024-06-01T10:00:00", [("Bo", "We took the harbour ferry to the island")])
    assert {h.kind for h in find(store, "harbour ferry", kinds="fact")} == {"fact"}
    assert {h.conversation for h in find(store, "harbour ferry", conversation="c1")} == {"c1"}
    assert contents(find(store, "harbour ferry", kinds="message", since="2024-01-01")) == [
        "We took the harbour ferry to the island"
    ]
    assert contents(find(store, "harbour ferry", kinds="message", until="2023-12-31")) == [
        "The harbour ferry was late again"
    ]
    with pytest.raises(UsageError):
        make_filters(kinds="thought")


def test_superseded_and_expired_are_excluded_unless_asked(store: MemoryStore) -> None:
    old = store.remember("Ana lives in Porto")
    new = store.remember("Ana lives in Lisbon")
    gone = store.remember("Ana lives in a tent for the festival")
    store.supersede(old.id, new.id)
    store.conn.execute(
        "UPDATE memories SET expires_at = '2000-01-01T00:00:00+00:00' WHERE id = ?", [gone.id]
    )
    assert [h.id for h in find(store, "where does Ana live")] == [new.id]
    everything = find(store, "where does Ana live", include_inactive=True)
    assert {h.id for h in everything} == {old.id, new.id, gone.id}


def test_exclusions_leave_out_what_the_caller_already_holds(store: MemoryStore) -> None:
    rule = store.remember("Answer questions about the ferry in one line", kind="instruction")
    fact = store.remember("The harbour ferry leaves at noon")
    other = store.remember("The ferry to the island costs five euros")
    chat(store, "c1", "2024-06-01T10:00:00", [("Ana", "The ferry was late again")])
    msg = store.messages("c1")[0]
    everything = {h.id for h in find(store, "ferry", limit=20)}
    assert rule.id in everything and fact.id in everything
    filters = Filters(
        exclude_kinds=("instruction",), exclude_ids=(fact.id,), exclude_messages=(msg.id,)
    )
    left = search(store, "ferry", limit=20, filters=filters)
    assert [h.id for h in left] == [other.id]


def test_profiles_are_separate_but_share_system(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with MemoryStore.open(path, profile="ana") as ana:
        ana.remember("Ana's locker code is blue")
    with MemoryStore.open(path, profile="system") as system:
        system.remember("The office locker room opens at nine")
    with MemoryStore.open(path, profile="bo") as bo:
        assert {h.profile for h in find(bo, "locker")} == {"system"}
    with MemoryStore.open(path, profile="ana") as ana:
        assert find(ana, "locker code")[0].profile == "ana"


def test_limit_must_be_positive(store: MemoryStore) -> None:
    with pytest.raises(UsageError):
        search(store, "anything", limit=0)
    assert search(store, "   ") == []


# ------------------------------------------------------------ plain facts
def test_fact_found_by_its_words(store: MemoryStore) -> None:
    for text in ("My sister lives in Oslo", "Coffee before ten, never after", "The car is blue"):
        store.remember(text)
    rex = store.remember("My dog is called Rex")
    assert find(store, "dog name")[0].id == rex.id


def test_importance_breaks_a_tie(store: MemoryStore) -> None:
    low = store.remember("The spare key is under the blue pot", importance=0.2)
    high = store.remember("The spare key is under the red pot", importance=0.9)
    assert [h.id for h in find(store, "spare key pot")] == [high.id, low.id]


def test_recency_breaks_a_tie(store: MemoryStore) -> None:
    older = store.add_memory("Parking permit renewed", created_at="2020-01-01T00:00:00+00:00")
    newer = store.add_memory("Parking permit renewed again")
    assert [h.id for h in find(store, "parking permit")][:2] == [newer, older]


def test_a_speakers_name_still_finds_facts_about_them(store: MemoryStore) -> None:
    chat(store, "c1", "2023-03-01T10:00:00", [("Ana", "Hi Bo"), ("Bo", "Hi Ana, lovely day")])
    fact = store.remember("Ana is allergic to peanuts")
    assert find(store, "What is Ana allergic to?")[0].id == fact.id


# --------------------------------------------------------- conversations
def test_the_turn_after_a_matching_question_is_found(store: MemoryStore) -> None:
    """The answer shares no word with the query; the turn before it does."""
    chat(
        store,
        "c1",
        "2023-03-01T10:00:00",
        [
            ("Ana", "Morning! The weather is finally nice."),
            ("Bo", "Which one? I love museums."),
        ],
    )
    chat(
        store,
        "c1",
        "2023-04-01T10:00:00",
        [
            ("Bo", "Did you try the lasagna recipe I sent you?"),
            ("Ana", "Absolutely delicious, my whole family asked for seconds!"),
            ("Bo", "Glad to hear it. Off to the gym now."),
            ("Ana", "My family visited the museum."),
        ],
    )
    answer = "Absolutely delicious, my whole family asked for seconds!"
    order = contents(find(store, "What did Ana think of the lasagna recipe?"))
    assert order[0] == answer
    # Words alone (no structure, no speaker evidence) do not find it.
    off = Ranking(neighbour_weight=0.0, session_weight=0.0, vector_weight=0.0, speaker_weight=0.0)
    alone = search(store, "What did Ana think of the lasagna recipe?", ranking=off)
    assert answer not in contents(alone)


def test_a_session_about_the_topic_lifts_its_turns(store: MemoryStore) -> None:
    chat(
        store,
        "c1",
        "2023-03-01T10:00:00",
        [
            ("Ana", "I started a pottery class on Monday."),
            ("Bo", "Pottery sounds fun, what did you make?"),
            ("Ana", "A wobbly bowl and a small cup for my tea."),
            ("Bo", "Send me a picture."),
            ("Ana", "Will do, it needs a glaze first."),
        ],
    )
    chat(
        store,
        "c1",
        "2023-05-01T10:00:00",
        [
            ("Ana", "The garden is full of tomatoes."),
            ("Bo", "Nice."),
            ("Ana", "I also bought a glaze for the fence."),
        ],
    )
    hits = find(store, "Ana pottery glaze", conversation="c1", limit=10)
    order = contents(hits)
    assert order.index("Will do, it needs a glaze first.") < order.index(
        "I also bought a glaze for the fence."
    )


def test_the_person_asked_about_is_preferred(store: MemoryStore) -> None:
    chat(
        store,
        "c1",
        "2023-03-01T10:00:00",
        [
            ("Ana", "Bo, I hear you took up the violin."),
            ("Bo", "Yes, violin lessons every Thursday."),
            ("Ana", "I tried the violin once, it was hard."),
        ],
    )
    assert find(store, "What does Bo play? violin")[0].speaker == "Bo"
    assert find(store, "Did Ana ever try the violin?")[0].speaker == "Ana"
    assert parse_query("Did Ana ever try the violin?").terms == ("ana", "try", "violin")


def test_the_date_asked_about_is_preferred(store: MemoryStore) -> None:
    chat(store, "c1", "2023-05-14T10:00:00", [("Ana", "We went hiking in the hills.")])
    chat(store, "c1", "2023-08-20T10:00:00", [("Ana", "We went hiking by the lake.")])
    assert find(store, "Where did Ana go hiking in August 2023?")[0].content == (
        "We went hiking by the lake."
    )
    assert find(store, "Where did Ana go hiking on 14 May, 2023?")[0].content == (
        "We went hiking in the hills."
    )
    parsed = parse_query("What did Ana do on 14 May, 2023?")
    assert parsed.when is not None and parsed.when.grain == "day"
    assert parsed.when.covers(datetime(2023, 5, 15, 9, tzinfo=UTC))
    assert not parsed.when.covers(datetime(2023, 6, 1, tzinfo=UTC))
    assert "2023" not in parsed.terms and "may" not in parsed.terms


def test_the_shape_of_the_answer_is_preferred(store: MemoryStore) -> None:
    chat(
        store,
        "c1",
        "2023-03-01T10:00:00",
        [
            ("Ana", "I swim at the club pool, it is lovely."),
            ("Bo", "Nice pool."),
            ("Ana", "I swim twice a week at the pool."),
        ],
    )
    assert answer_kind("How often does Ana swim?") == "how often"
    assert find(store, "How often does Ana swim at the pool?")[0].content == (
        "I swim twice a week at the pool."
    )


# ---------------------------------------------------------------- embedder
@pytest.mark.parametrize("name", ["hash-256", "minilm-static-256"])
def test_the_offline_embedders_are_deterministic_across_processes(name: str) -> None:
    text = "Rex chewed one of my cello books this morning."
    here = pack(get_embedder(name).embed([text])[0]).hex()
    code = (
        "from memory.models.embed import get_embedder, pack; import sys; "
        f"sys.stdout.write(pack(get_embedder({name!r}).embed([{text!r}])[0]).hex())"
    )
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert here == there
    embedder = get_embedder(name)
    twice = embedder.embed([text, text])
    assert twice[0] == twice[1] and abs(sum(v * v for v in twice[0]) - 1.0) < 1e-9


def test_when_the_vectors_bring_candidates_of_their_own() -> None:
    rule = Ranking()
    # Words that found too little: always, whatever the embedder or the store.
    assert rule.wants_nearest("hash-256", 3, 10, scan_rows=10 * KNN_ROWS)
    # The hashing embedder knows only spelling: BM25 has found what it would.
    assert not rule.wants_nearest("hash-256", 50, 10, scan_rows=1_000)
    # An embedder that knows meaning: while the scan is cheap.
    assert rule.wants_nearest("minilm-static-256", 50, 10, scan_rows=KNN_ROWS)
    assert not rule.wants_nearest("minilm-static-256", 50, 10, scan_rows=KNN_ROWS + 1)
    assert Ranking(nearest=True).wants_nearest("hash-256", 50, 10)
