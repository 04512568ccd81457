"""Embedding happens outside the write lock.

A provider embedder is an HTTP call (60 s timeout, retries), longer than the
30 s busy timeout of every other mem process, so no write may hold
``BEGIN IMMEDIATE`` while it embeds. The test embedder below, registered under
its own name, tries a write from a second connection each time it is asked to
embed: with the lock held that write fails at once ("database is locked").
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from memory import MemoryStore
from memory.formation.consolidation import consolidate
from memory.formation.extraction import Candidate
from memory.hookspecs import Register
from memory.models.embed import HashingEmbedder
from memory.plugins import hookimpl, register_plugin, unregister_plugin
from memory.retrieval.search import find
from memory.storage.sqlite.db import connect

NAME = "probe-hash-64"


class ProbingEmbedder:
    """hash-64 vectors, but every ``embed`` call first tries a write from
    another connection and records whether it got the write lock."""

    def __init__(self) -> None:
        self.inner = HashingEmbedder(64)
        self.path: Path | None = None
        self.outcomes: list[str] = []
        self.stores: list[MemoryStore] = []

    @property
    def name(self) -> str:
        return NAME

    @property
    def dim(self) -> int:
        return 64

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self.path is not None:
            self.outcomes.append(self._probe(self.path))
        return self.inner.embed(texts)

    @staticmethod
    def _probe(path: Path) -> str:
        other = connect(path)
        try:
            other.execute("PRAGMA busy_timeout = 100")
            other.execute("BEGIN IMMEDIATE")
            other.execute(
                "INSERT INTO meta(key, value) VALUES ('probe', '1') "
                "ON CONFLICT(key) DO UPDATE SET value = value + 1"
            )
            other.execute("COMMIT")
            return "wrote"
        except Exception as err:  # the lock is held: record why
            return f"blocked: {err}"
        finally:
            other.close()


@pytest.fixture
def probe(mem_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProbingEmbedder]:
    """The probing embedder, registered and configured; stores opened with
    ``_armed`` are closed afterwards."""
    embedder = ProbingEmbedder()

    class Plugin:
        @hookimpl
        def register_embedders(self, register: Register) -> None:
            register(NAME, lambda: embedder)

    plugin = Plugin()
    register_plugin(plugin)
    monkeypatch.setenv("MEM_EMBEDDER", NAME)
    yield embedder
    for store in embedder.stores:
        store.close()
    unregister_plugin(plugin)


def _armed(probe: ProbingEmbedder, mem_home: Path) -> MemoryStore:
    store = MemoryStore.open(mem_home / "mem.db", embedder=NAME)
    probe.path = mem_home / "mem.db"
    probe.stores.append(store)
    return store


def _assert_never_blocked(probe: ProbingEmbedder) -> None:
    assert probe.outcomes, "the embedder was never called"
    assert all(o == "wrote" for o in probe.outcomes), probe.outcomes


def test_log_message_embeds_before_taking_the_lock(probe: ProbingEmbedder, mem_home: Path) -> None:
    store = _armed(probe, mem_home)
    cid = store.new_conversation()
    mid = store.log_message(cid, "user", "I walk the dog every morning")
    _assert_never_blocked(probe)
    assert store.message(mid) is not None
    assert [h.content for h in find(store, "dog")] == ["I walk the dog every morning"]


def test_remember_embeds_before_taking_the_lock(probe: ProbingEmbedder, mem_home: Path) -> None:
    store = _armed(probe, mem_home)
    mem = store.remember("The user's password is hunter2hunter2 for the wifi")
    _assert_never_blocked(probe)
    assert "hunter2" not in mem.content


@pytest.mark.parametrize(
    ("second", "action"),
    [
        (Candidate("The user has a dog named Rex", slot="dog name", value="Rex"), "ignore"),
        (Candidate("The user has a dog named Max", slot="dog name", value="Max"), "supersede"),
        (Candidate("The user has a dog named Rex who is very old and grey"), "update"),
        (Candidate("The user likes sailing on lakes"), "add"),
    ],
)
def test_consolidation_embeds_before_taking_the_lock(
    probe: ProbingEmbedder, mem_home: Path, second: Candidate, action: str
) -> None:
    store = _armed(probe, mem_home)
    consolidate(store, Candidate("The user has a dog named Rex", slot="dog name", value="Rex"))
    probe.outcomes.clear()
    change = consolidate(store, second)
    assert change.action == action
    _assert_never_blocked(probe)


def test_undo_of_an_update_embeds_before_taking_the_lock(
    probe: ProbingEmbedder, mem_home: Path
) -> None:
    from memory.formation.consolidation import undo_last

    store = _armed(probe, mem_home)
    consolidate(store, Candidate("The user has a dog named Rex"))
    change = consolidate(store, Candidate("The user has a dog named Rex who is very old and grey"))
    assert change.action == "update"
    probe.outcomes.clear()
    assert undo_last(store) == ["~ restored: The user has a dog named Rex"]
    _assert_never_blocked(probe)


def test_mem_add_embeds_before_taking_the_lock(
    probe: ProbingEmbedder, mem_home: Path, tmp_path: Path, cli: Any
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nThe alpha section talks about boats.\n")
    (docs / "b.md").write_text("# Beta\n\n" + "Beta paragraph about trains. " * 2000 + "\n")
    _armed(probe, mem_home).close()
    cli("add", str(docs), "--max-tokens", "64", "--overlap", "0")
    _assert_never_blocked(probe)
    assert len(probe.outcomes) >= 2  # the big file was streamed in several batches
    assert cli.json("docs")[0]["path"].endswith("a.md")


def _posix_locks_on(path: Path) -> list[str]:
    """This process's POSIX locks on ``path``, as Linux lists them."""
    inode, pid = str(os.stat(path).st_ino), str(os.getpid())
    found = []
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        at = 2 if fields[1] == "->" else 1  # a blocked waiter's line is indented by "->"
        if fields[at + 3] == pid and fields[at + 4].split(":")[2] == inode:
            found.append(" ".join(fields[at:]))  # the leading number is a list index
    return found


def test_a_second_connection_keeps_the_first_ones_locks(tmp_path: Path) -> None:
    """Opening the database again in the same process (the REPL's formation
    thread does, every turn) must not read the file with open()/close(): POSIX
    drops every lock a process holds on a file when any descriptor of it is
    closed, so the first connection's read lock vanished and another process
    could checkpoint under it. (Failed before: 1 lock before the open, 0 after.)"""
    path = tmp_path / "mem.db"
    with MemoryStore.open(path) as store:
        store.add_memory("x")
    with MemoryStore.open(path) as first:
        first.conn.execute("BEGIN")
        first.conn.execute("SELECT count(*) FROM memories").fetchone()
        held = _posix_locks_on(path)
        assert held, "a reader holds a lock on the database file"
        with MemoryStore.open(path):
            assert _posix_locks_on(path) == held
        first.conn.execute("COMMIT")
