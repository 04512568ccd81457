"""`mem reindex` is atomic: an interrupted one changes nothing, and a database
whose vectors are incomplete says so on open, naming `mem reindex`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from memory import MemoryStore
from memory.errors import IndexIncompleteError
from memory.storage.sqlite.db import connect

ROOT = Path(__file__).resolve().parents[1]

# Reindexes with hash-64 (registered here as a slow one), a batch of 10 at a
# time, and says when each batch is written, so the test can kill it mid-way.
_SLOW_REINDEX = """
import sys, time
from memory import MemoryStore
from memory.models.embed import HashingEmbedder, register_embedder

class Slow(HashingEmbedder):
    def embed(self, texts):
        time.sleep(0.05)
        return super().embed(texts)

register_embedder("hash-64", lambda: Slow(64))
store = MemoryStore.open(sys.argv[1], embedder="hash-64", allow_embedder_change=True)
store.reindex(batch=10, progress=lambda done, total: print(done, total, flush=True))
print("finished", flush=True)
"""


def _fill(cli: Any, n: int) -> None:
    lines = "".join(
        f'{{"type":"memory","content":"Fact number {i} about a lighthouse keeper"}}\n'
        for i in range(n)
    )
    cli("import", "-", input=lines)


def test_a_killed_reindex_leaves_the_old_index_in_force(cli: Any, mem_home: Path) -> None:
    db = mem_home / "mem.db"
    _fill(cli, 120)
    before = [h["id"] for h in cli.json("search", "lighthouse keeper number 7")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _SLOW_REINDEX, str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    for _ in range(3):  # three batches written, more to come
        line = child.stdout.readline()
        assert line and not line.startswith("finished"), line + child.stderr.read()
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    stats = cli.json("stats")
    assert (stats["embedder"], stats["embedder_dim"]) == ("minilm-static-256", 256)
    assert [h["id"] for h in cli.json("search", "lighthouse keeper number 7")] == before
    cli("remember", "Written after the interrupted reindex")
    out = cli("reindex", "--embedder", "hash-64")
    assert out.stdout == "Reindexed 121 memories with hash-64.\n"
    assert cli.json("stats")["embedder"] == "hash-64"
    hits = cli.json("search", "interrupted reindex")
    assert hits[0]["content"] == "Written after the interrupted reindex"


def test_missing_vectors_are_detected_on_open(cli: Any, mem_home: Path) -> None:
    db = mem_home / "mem.db"
    _fill(cli, 30)
    conn = connect(db)
    conn.execute("DELETE FROM memories_vec WHERE id > 20")
    conn.execute("DELETE FROM memory_vectors WHERE id > 20")
    conn.close()
    res = cli("list", code=4)
    assert res.stderr == (
        f"Error: 10 of the 30 memories in {db} have no vector (an interrupted reindex?): run "
        "`mem reindex` to rebuild them.\n"
    )
    with pytest.raises(IndexIncompleteError):
        MemoryStore.open(db)
    assert cli("reindex").stdout == "Reindexed 30 memories with minilm-static-256.\n"
    assert len(cli.json("list", "-n", "100")) == 30


def test_a_store_opened_before_a_reindex_cannot_write_old_vectors(mem_home: Path) -> None:
    from memory.errors import EmbedderMismatchError

    db = mem_home / "mem.db"
    before = MemoryStore.open(db)
    before.remember("Opened before the reindex")
    with MemoryStore.open(db, embedder="hash-64", allow_embedder_change=True) as other:
        assert other.reindex() == 1
    with pytest.raises(EmbedderMismatchError, match="was reindexed with hash-64 while"):
        before.remember("Written with the old embedder")
    before.close()
    with MemoryStore.open(db) as after:
        assert [m.content for m in after.list_memories()] == ["Opened before the reindex"]
        assert after.embedder.name == "hash-64"
