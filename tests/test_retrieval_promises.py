"""Retrieval promises as behaviour, past the sizes the small tests use: in a
store bigger than the exact vector scan, a question worded unlike the memory
still finds it; kind filters take several kinds (written to kill
mutation-test survivors in the KNN and filter code)."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory import MemoryStore
from memory.errors import UsageError
from memory.lifecycle.transfer import import_file
from memory.retrieval.search import (
    EXACT_VECTOR_LIMIT,
    WHERE_HELP,
    find,
    make_filters,
    parse_where,
    search,
)

SYLLABLES = "ka ro mi te su na lo vi pe da shi ko".split()
DOG = "The user's dog is called Rex."


def _filler(rng: random.Random) -> str:
    return " ".join("".join(rng.choice(SYLLABLES) for _ in range(3)) for _ in range(8))


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemoryStore]:
    rng = random.Random(3)
    lines = [{"type": "memory", "content": _filler(rng)} for _ in range(EXACT_VECTOR_LIMIT + 100)]
    lines.append({"type": "memory", "content": DOG})
    lines += [{"type": "memory", "content": _filler(rng)} for _ in range(300)]
    lines.append({"type": "memory", "kind": "instruction", "content": "Answer about Rex kindly."})
    path = tmp_path_factory.mktemp("big") / "mem.db"
    with MemoryStore.open(path) as store:
        import_file(store, io.BytesIO("\n".join(json.dumps(x) for x in lines).encode()))
        yield store


@pytest.mark.parametrize(
    "question", ["what is the name of my puppy", "my pet hound", "canine companion name"]
)
def test_paraphrase_found_past_the_exact_scan(big: MemoryStore, question: str) -> None:
    hits = find(big, question, limit=5)
    assert hits and hits[0].content == DOG


def test_several_kinds_at_once(big: MemoryStore) -> None:
    hits = find(big, "Rex", limit=10, kinds=("fact", "instruction"))
    assert {h.kind for h in hits} == {"fact", "instruction"}
    assert {h.content for h in hits[:2]} == {DOG, "Answer about Rex kindly."}
    only = find(big, "Rex", limit=10, kinds=("instruction",))
    assert [h.content for h in only] == ["Answer about Rex kindly."]  # the one instruction


def test_limit_is_exact_and_scores_descend(big: MemoryStore) -> None:
    hits = find(big, "kami rosu tena", limit=7)
    assert len(hits) == 7
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_a_rare_word_finds_its_memories_past_the_exact_scan(big: MemoryStore) -> None:
    """In a store too big for the exact vector scan, a rare word that means
    nothing to the embedder is found by the keyword leg alone."""
    rng = random.Random(3)
    lines = [_filler(rng) for _ in range(EXACT_VECTOR_LIMIT + 100)]
    counts: dict[str, int] = {}
    for line in lines:
        for word in set(line.split()):
            counts[word] = counts.get(word, 0) + 1
    word = min(counts, key=lambda w: (counts[w], w))  # the rarest syllable word
    hits = find(big, word, limit=3)
    assert hits and all(word in h.content.split() for h in hits[: counts[word]])


# ------------------------------------------------------------------ small stores
@pytest.fixture
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    with MemoryStore.open(tmp_path / "m.db") as s:
        yield s


def test_a_hit_carries_where_the_memory_came_from(store: MemoryStore) -> None:
    conv = store.new_conversation("trip", conversation_id="c1")
    said = store.log_message(conv, "user", "I moved to Lisbon", external_id="D1:3")
    old = store.add_memory(
        "Ana lives in Porto",
        source="extraction",
        importance=0.8,
        confidence=0.6,
        source_message_id=said,
        conversation=conv,
        external_id="F1",
        speaker="Ana",
        created_at="2024-05-01T10:00:00+00:00",
        metadata={"slot": "home"},
    )
    new = store.add_memory("Ana lives in Lisbon")
    store.supersede(old, new)
    [hit] = [h for h in find(store, "Ana Porto", include_inactive=True) if h.id == old]
    assert hit.to_dict() | {"score": 0} == {
        "id": old,
        "kind": "fact",
        "content": "Ana lives in Porto",
        "score": 0,
        "created_at": "2024-05-01T10:00:00+00:00",
        "conversation": "c1",
        "message_id": said,
        "external_id": "F1",
        "profile": "default",
        "source": "extraction",
        "speaker": "Ana",
        "importance": 0.8,
        "confidence": 0.6,
        "superseded_by": new,
        "metadata": {"slot": "home"},
    }
    assert hit.score > 0


def test_filter_errors_say_what_to_give(store: MemoryStore) -> None:
    cases = [
        (lambda: make_filters(kinds="thought"), "Unknown kind 'thought': use one of fact, "
         "instruction, message, episode, document, summary, example."),
        (lambda: search(store, "x", limit=0), "Invalid limit 0: use a whole number of at least 1."),
        (lambda: parse_where("=docs"), f"Invalid --where '=docs': {WHERE_HELP}."),
        (lambda: parse_where("a b=c"), f"Invalid metadata key 'a b' in --where: {WHERE_HELP}."),
        (lambda: parse_where(("path", "<", "x")), f"Invalid --where operator '<': {WHERE_HELP}."),
    ]  # fmt: skip
    for call, message in cases:
        with pytest.raises(UsageError) as err:
            call()
        assert str(err.value) == message


def test_where_parses_each_operator() -> None:
    assert parse_where("path=docs/a.md") == ("path", "=", "docs/a.md")
    assert parse_where("path~=docs/") == ("path", "~=", "docs/")
    assert parse_where(" path != x=y") == ("path", "!=", " x=y")
    assert parse_where("n=") == ("n", "=", "")


def test_where_filters_on_metadata(store: MemoryStore) -> None:
    a = store.add_memory("ferry notes one", metadata={"path": "docs/a.md", "line": 7})
    b = store.add_memory("ferry notes two", metadata={"path": "src/b.py"})
    c = store.add_memory("ferry notes three")

    def found(*where: str) -> set[int]:
        return {h.id for h in find(store, "ferry notes", where=list(where))}

    assert found() == {a, b, c}
    assert found("path=docs/a.md") == {a}
    assert found("path~=docs") == {a}
    assert found("path!=docs/a.md") == {b, c}  # a memory without the key differs too
    assert found("line=7") == {a}
    assert found("path~=docs", "line=8") == set()


def test_since_and_until_include_their_own_moment(store: MemoryStore) -> None:
    stamp = "2024-06-01T10:00:00+00:00"
    on = store.add_memory("ferry at ten", created_at=stamp)
    before = store.add_memory("ferry at nine", created_at="2024-06-01T09:00:00+00:00")
    assert {h.id for h in find(store, "ferry", since=stamp)} == {on}
    assert {h.id for h in find(store, "ferry", until=stamp)} == {on, before}
    assert {h.id for h in find(store, "ferry", since=stamp, until=stamp)} == {on}


def test_a_memory_that_expires_later_is_still_found(store: MemoryStore) -> None:
    soon = store.remember("The ferry is cancelled this week").id
    store.conn.execute(
        "UPDATE memories SET expires_at = '2999-01-01T00:00:00+00:00' WHERE id = ?", [soon]
    )
    assert [h.id for h in find(store, "ferry cancelled")] == [soon]


def test_a_key_may_end_in_any_letter() -> None:
    assert parse_where("boX=1") == ("boX", "=", "1")
    assert parse_where("tax~=5") == ("tax", "~=", "5")


def test_times_may_be_given_as_datetimes(store: MemoryStore) -> None:
    from datetime import UTC, datetime

    old = store.add_memory("ferry at nine", created_at="2020-06-01T09:00:00+00:00")
    new = store.add_memory("ferry at ten", created_at="2024-06-01T10:00:00+00:00")
    cut = datetime(2022, 1, 1, tzinfo=UTC)
    assert make_filters(since=cut).since == "2022-01-01T00:00:00+00:00"
    assert [h.id for h in find(store, "ferry", since=cut)] == [new]
    assert [h.id for h in find(store, "ferry", until=cut)] == [old]


def test_a_window_of_one_turn_still_finds_the_answer_after_the_question(
    store: MemoryStore,
) -> None:
    from memory.retrieval.ranking import Ranking

    conv = store.new_conversation(conversation_id="c1", created_at="2023-04-01T10:00:00")
    turns = [
        ("Bo", "Did you try the lasagna recipe I sent you?"),
        ("Ana", "Absolutely delicious, my whole family asked for seconds!"),
        ("Bo", "Glad to hear it. Off to the gym now."),
    ]
    for speaker, text in turns:
        store.log_message(conv, "user", text, speaker=speaker, created_at="2023-04-01T10:00:00")
    answer = turns[1][1]
    question = "What did Ana think of the lasagna recipe?"
    only = {"session_weight": 0.0, "vector_weight": 0.0, "speaker_weight": 0.0}
    found = search(store, question, ranking=Ranking(neighbour_window=1, **only))
    assert answer in [h.content for h in found]
    none = search(store, question, ranking=Ranking(neighbour_window=0, **only))
    assert answer not in [h.content for h in none]


def test_a_nearer_turn_is_lifted_more_than_a_farther_one(store: MemoryStore) -> None:
    """Before the matching turn as after it, the turn next to it counts more
    than the one two turns away."""
    from memory.retrieval.ranking import Ranking

    conv = store.new_conversation(conversation_id="c1", created_at="2023-04-01T10:00:00")
    texts = [
        "Morning, how was the weekend?",
        "Quiet, we stayed home.",
        "Did you try the lasagna recipe I sent you?",
        "Yes, we all loved it.",
        "Great, see you on Monday then.",
    ]
    ids = [store.log_message(conv, "user", t, created_at="2023-04-01T10:00:00") for t in texts]
    only = Ranking(neighbour_window=2, session_weight=0.0, vector_weight=0.0, speaker_weight=0.0)
    hits = search(store, "lasagna recipe", ranking=only)
    by_message = {h.message_id: h.score for h in hits}
    assert hits[0].message_id == ids[2]
    assert by_message[ids[1]] > by_message[ids[0]] > 0
    assert by_message[ids[3]] > by_message[ids[4]] > 0


def test_the_next_days_turn_is_not_a_neighbour(store: MemoryStore) -> None:
    """Neighbours are turns of the same session (same conversation, same day);
    one the caller leaves out is left out as a neighbour too."""
    from memory.retrieval.ranking import Ranking
    from memory.retrieval.search import Filters

    conv = store.new_conversation(conversation_id="c1", created_at="2023-04-01T10:00:00")
    question = store.log_message(
        conv, "user", "Did you try the lasagna recipe I sent you?", created_at="2023-04-01T10:00:00"
    )
    same_day = store.log_message(
        conv, "user", "Yes, we all loved it.", created_at="2023-04-01T10:05:00"
    )
    next_day = store.log_message(
        conv, "user", "Morning, off to work.", created_at="2023-04-02T08:00:00"
    )
    only = Ranking(neighbour_window=2, session_weight=0.0, vector_weight=0.0, speaker_weight=0.0)
    found = {h.message_id for h in search(store, "lasagna recipe", ranking=only)}
    assert found == {question, same_day}
    left_out = Filters(exclude_messages=(same_day,))
    found = {h.message_id for h in search(store, "lasagna recipe", ranking=only, filters=left_out)}
    assert found == {question}
    assert next_day not in found


def test_among_equal_scores_the_newest_memory_wins(store: MemoryStore) -> None:
    """Past the candidates read whole (fifty), ties still go to the newest."""
    ids = [
        store.add_memory("The ferry leaves at noon", created_at="2024-01-01T00:00:00+00:00")
        for _ in range(60)
    ]
    [hit] = find(store, "ferry noon", limit=1)
    assert hit.id == ids[-1]


def test_several_kinds_can_be_left_out(store: MemoryStore) -> None:
    from memory.retrieval.search import Filters

    store.remember("Answer questions about the ferry in one line", kind="instruction")
    store.add_memory("Ana took the ferry to the island", kind="episode")
    fact = store.remember("The harbour ferry leaves at noon").id
    left = search(store, "ferry", filters=Filters(exclude_kinds=("instruction", "episode")))
    assert [h.id for h in left] == [fact]


def test_the_best_keyword_match_is_found_among_many_newer_ones(store: MemoryStore) -> None:
    """A common word is scored over its newest matches, and the best of those
    by score (not the newest) are the candidates."""
    best = store.add_memory("Ferry.")
    for n in range(60):
        store.add_memory(f"Note {n}: on the long walk past the harbour we saw a ferry again")
    [hit] = find(store, "ferry", limit=1)
    assert hit.id == best
