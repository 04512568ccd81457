"""Retrieval promises as behaviour, past the sizes the small tests use: in a
store bigger than the exact vector scan, a question worded unlike the memory
still finds it; kind filters take several kinds (written to kill
mutation-test survivors in the KNN and filter code)."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator

import pytest

from memory import MemoryStore
from memory.retrieval import EXACT_VECTOR_LIMIT, find
from memory.transfer import import_file

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
