"""The offline semantic embedder (memory.models.static_embed): the shipped table, its tokeniser,
what it finds that spelling cannot, and databases made with the hashing embedder."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import pytest

import memory.models.static_embed as se
from memory import MemoryStore
from memory.errors import UsageError
from memory.models.embed import DEFAULT_EMBEDDER, get_embedder
from memory.retrieval.search import find
from memory.text import STOPWORDS, words


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_default_embedder_is_the_static_one() -> None:
    embedder = get_embedder(None)
    assert DEFAULT_EMBEDDER == embedder.name == "minilm-static-256"
    assert embedder.dim == 256


@pytest.mark.parametrize(
    "text",
    [
        "Kickboxing gives me so much energy!",
        "Café crème at the Musée d'Orsay, naïvely priced: €4.50",
        "We roasted marshmallows around the campfire; the kids LOVED it.",
        "My e-mail is ana.lopez@example.org and my ID is X-42_b",
        "Ünïcödé straße 東京 emojis 🎉 and a veryveryveryveryveryveryveryverylongword",
    ],
)
def test_word_pieces_match_bert_wordpiece(text: str) -> None:
    # The table was distilled per word piece, so the pieces must be BERT's own.
    tokenizers = pytest.importorskip("tokenizers")
    vocab = resources.files("memory") / "data" / se.VOCAB_FILE
    with resources.as_file(vocab) as path:
        bert = tokenizers.BertWordPieceTokenizer(str(path), lowercase=True)
    kept = " ".join(w for w in words(text) if w not in STOPWORDS)
    expected = [i for i in bert.encode(kept, add_special_tokens=False).ids if i != 100]
    assert se.pieces(text) == expected


def test_finds_meaning_that_spelling_misses() -> None:
    embed = get_embedder(None).embed
    question, yoga, market = embed(
        [
            "What exercise does Sam do?",
            "I started a weekend yoga class and I feel great",
            "The quarterly report shows revenue fell",
        ]
    )
    assert cosine(question, yoga) > cosine(question, market) + 0.1
    hashed = get_embedder("hash-256").embed(
        ["What exercise does Sam do?", "I started a weekend yoga class and I feel great"]
    )
    assert cosine(question, yoga) > cosine(*hashed)


def test_vectors_are_unit_and_the_same_in_batches() -> None:
    # Across processes: test_retrieval's determinism test covers both offline embedders.
    texts = [f"Note {i}: the dog chewed {i} cello books" for i in range(se.NUMPY_BATCH)]
    embedder = get_embedder(None)
    batch = embedder.embed(texts)  # numpy
    single = [embedder.embed([t])[0] for t in texts]  # pure Python
    for a, b in zip(batch, single, strict=True):
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-9
        assert math.isclose(sum(x * x for x in a), 1.0, rel_tol=1e-9)


def test_text_without_content_words_is_the_zero_vector() -> None:
    assert get_embedder(None).embed(["", "what is it?", "!!!"]) == [[0.0] * 256] * 3


def test_a_missing_table_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(se, "_table", None)
    monkeypatch.setattr(se, "TABLE_FILE", "no-such-table.bin")
    with pytest.raises(UsageError) as err:
        get_embedder(None).embed(["hello"])
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("The offline embedder's table is missing")
    assert message.endswith("reinstall mem, or use --embedder hash-256.")


def test_search_finds_a_memory_with_no_word_in_common(tmp_path: Path) -> None:
    with MemoryStore.open(tmp_path / "m.db") as store:
        for text in (
            "I started a weekend yoga class with a colleague",
            "The quarterly report is due on Friday",
            "My sister moved to Porto last spring",
            "We adopted a kitten called Miso",
        ):
            store.remember(text)
        assert find(store, "physical exercise")[0].content.startswith("I started a weekend yoga")


def test_a_database_made_with_the_hashing_embedder_keeps_it(tmp_path: Path) -> None:
    # Databases from before the static embedder were built with hash-256: they open as
    # they are, searching with hash-256, until `mem reindex --embedder ...` is run.
    path = tmp_path / "old.db"
    with MemoryStore.open(path, embedder="hash-256") as old:
        old.remember("The user plays the cello")
    with MemoryStore.open(path) as store:
        assert store.embedder.name == "hash-256"
        assert find(store, "cello")[0].content == "The user plays the cello"
    with MemoryStore.open(path, embedder=DEFAULT_EMBEDDER, allow_embedder_change=True) as store:
        assert store.reindex() == 1
    with MemoryStore.open(path) as store:
        assert store.embedder.name == DEFAULT_EMBEDDER
        assert find(store, "music instrument")[0].content == "The user plays the cello"


def test_neighbours_are_near_whole_words() -> None:
    near = dict(se.neighbours("pets", 4, 0.5))
    assert {"animals", "dogs"} <= set(near)
    assert all(0.5 <= sim <= 1.0 for sim in near.values())
    assert list(near.values()) == sorted(near.values(), reverse=True)
    assert se.neighbours("pets", 1, 0.5) == list(near.items())[:1]
    assert se.neighbours("qzxv", 4, 0.0) == []  # not a piece of the vocabulary
    assert se.neighbours("pets", 4, 0.99) == []


def test_query_expansion_finds_a_near_word(tmp_path: Path) -> None:
    from memory.retrieval.query import parse_query
    from memory.retrieval.ranking import Ranking
    from memory.retrieval.search import _expansions, search

    # Words only (no vectors), so whatever is found is found by BM25.
    words_only = Ranking(vector_weight=0.0)
    with MemoryStore.open(tmp_path / "m.db") as store:
        store.remember("Our two cats sleep on the sofa all day")
        store.remember("The quarterly report is due on Friday")
        hits = search(store, "Which pets do we have?", ranking=words_only)
        assert [h.content for h in hits] == ["Our two cats sleep on the sofa all day"]
        off = Ranking(vector_weight=0.0, expansion_weight=0.0)
        assert search(store, "Which pets do we have?", ranking=off) == []
    expanded = _expansions(parse_query("my pets and exercise"), set(), Ranking())
    assert "animals" in expanded and "workout" in expanded
    # Forms of the same word are left to the index's stemmer.
    assert not {"pet", "exercising", "exercises", "exercised"} & set(expanded)
    assert max(expanded.values()) <= Ranking().expansion_weight
    assert _expansions(parse_query("Where is Cello?"), {"cello"}, Ranking()) == {}  # a name


def test_a_damaged_table_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(se, "_table", None)
    monkeypatch.setattr(se, "TABLE_FILE", se.VOCAB_FILE)  # a file that is not a table
    with pytest.raises(UsageError) as err:
        get_embedder(None).embed(["hello"])
    assert str(err.value) == (
        f"The offline embedder's table {se.VOCAB_FILE} is damaged: reinstall mem."
    )


def test_neighbours_that_do_not_match_the_table_are_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(se, "_neighbours", None)
    monkeypatch.setattr(se, "NEIGHBOUR_FILE", se.TABLE_FILE)
    with pytest.raises(UsageError) as err:
        se.neighbours("pets", 4, 0.5)
    assert str(err.value) == (
        f"The offline embedder's {se.TABLE_FILE} does not match its table: reinstall mem."
    )
