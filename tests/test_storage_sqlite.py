"""SQLiteBackend on a file MemoryStore made, and the other way round: the
seam works over today's schema, so callers can move to it one at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory.errors import EmbedderMismatchError, UsageError
from memory.models.embed import get_embedder
from memory.retrieval.search import find
from memory.storage import MemoryFilter, NewMemory, Scope
from memory.storage.sqlite import SQLiteBackend
from memory.store import MemoryStore

ALICE = Scope.of("alice")
ALL = MemoryFilter(include_inactive=True)


def test_the_backend_reads_and_writes_a_memorystore_file(tmp_path: Path) -> None:
    path = tmp_path / "mem.db"
    store = MemoryStore.open(path, profile="alice")
    fact = store.remember("my dentist is Dr Okafor", tags=["health"]).id
    conv = store.new_conversation("checkup")
    message = store.log_message(conv, "user", "the dentist appointment is on Tuesday")
    store.close()

    backend = SQLiteBackend.open(path)
    assert backend.dim > 0
    assert backend.memory(ALICE, fact).metadata == {"tags": ["health"]}
    assert backend.message(ALICE, message) is not None
    scores = backend.keyword_scores(ALICE, "dentist", ALL)
    assert fact in scores and len(scores) == 2
    embedder = get_embedder(backend.get_meta(ALICE, "embedder"), dim=backend.dim)
    added = backend.add_memory(
        ALICE, NewMemory("the dentist moved to Elm Street"), embedder.embed(["dentist"])[0]
    )
    assert added > fact
    result = backend.forget(ALICE, [next(iter(set(scores) - {fact}))])
    assert result.messages == [message]
    backend.close()

    store = MemoryStore.open(path, profile="alice")
    hits = find(store, "dentist Elm Street")
    assert hits[0].id == added
    assert store.message(message) is None
    assert [e.event for e in store.history(added)] == []  # the seam leaves audit to callers
    store.close()


def test_opening_checks_the_embedder(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with pytest.raises(UsageError, match="embedder and its dimension"):
        SQLiteBackend.open(path)
    SQLiteBackend.open(path, embedder="toy", dim=4).close()
    with pytest.raises(EmbedderMismatchError, match="mem reindex"):
        SQLiteBackend.open(path, embedder="other", dim=4)
    backend = SQLiteBackend.open(path)
    with pytest.raises(UsageError, match="vector of 3 numbers"):
        backend.add_memory(ALICE, NewMemory("x"), [1.0, 0.0, 0.0])
    backend.close()
