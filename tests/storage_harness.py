"""The backends the storage suite runs against, and its small helpers.

Each backend is one entry of ``BACKENDS``: PostgreSQL runs on the session's
server (tests/pg_server.py), a fresh database per backend.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pg_server
import pytest
from storage_memory import MemoryBackend

from memory.hookspecs import Register
from memory.plugins import hookimpl, register_plugin, storage_backend
from memory.storage import MemoryFilter, NewMemory, NewMessage, Scope, StorageBackend
from memory.storage.sqlite import SQLiteBackend


class InMemoryStoragePlugin:
    """The in-memory double joins the suite the way a real backend would: through
    the ``register_storage_backends`` hook, looked up by name like ``sqlite``."""

    @hookimpl
    def register_storage_backends(self, register: Register) -> None:
        register("memory", lambda path=None, **options: MemoryBackend.open(**options))


register_plugin(InMemoryStoragePlugin(), name="test-storage-memory")

DIM = 8
ALICE = Scope.of("alice")
BOB = Scope.of("bob")
SYSTEM = Scope.of("system")
ALL = MemoryFilter(include_inactive=True)


def vec(text: str) -> list[float]:
    """A deterministic toy embedding: words hashed into DIM signed buckets."""
    out = [0.0] * DIM
    for word in text.lower().split():
        h = zlib.crc32(word.encode())
        out[h % DIM] += 1.0 if h & 256 else -1.0
    return out if any(out) else [1.0] + [0.0] * (DIM - 1)


@dataclass
class Harness:
    new: Callable[[], StorageBackend]  # another, empty backend of the same kind
    probe: Callable[[StorageBackend], bytes]  # all it holds, where forgotten text must not be


def _sqlite(tmp: Path) -> Harness:
    made: list[Path] = []

    def new() -> StorageBackend:
        path = tmp / f"db{len(made)}.sqlite"
        made.append(path)
        return storage_backend("sqlite")(path, embedder="toy", dim=DIM)  # type: ignore[no-any-return]

    def probe(backend: StorageBackend) -> bytes:
        assert isinstance(backend, SQLiteBackend) and backend.path is not None
        files = [backend.path, Path(f"{backend.path}-wal")]
        return b"".join(p.read_bytes() for p in files if p.exists())

    return Harness(new, probe)


def _memory(tmp: Path) -> Harness:
    def probe(backend: StorageBackend) -> bytes:
        assert isinstance(backend, MemoryBackend)
        return backend.dump().encode()

    return Harness(lambda: storage_backend("memory")(dim=DIM), probe)


def _postgres(tmp: Path) -> Harness:
    if pg_server.server_url() is None:
        pytest.skip("no PostgreSQL: pip install pgserver, or set MEM_TEST_POSTGRES_URL")
    urls: dict[int, str] = {}

    def new() -> StorageBackend:
        url = pg_server.fresh_database()
        backend = storage_backend("postgres")(url, embedder="toy", dim=DIM)
        urls[id(backend)] = url
        return backend  # type: ignore[no-any-return]

    return Harness(new, lambda backend: pg_server.probe(urls[id(backend)]))


BACKENDS = {"sqlite": _sqlite, "memory": _memory, "postgres": _postgres}


def add(db: StorageBackend, scope: Scope, text: str, **fields: object) -> int:
    return db.add_memory(scope, NewMemory(text, **fields), vec(text))  # type: ignore[arg-type]


def say(db: StorageBackend, scope: Scope, conv: str, text: str, role: str = "user") -> int:
    """A message and its index row (a memory of kind message), as a turn logs it."""
    db.add_conversation(scope, conv)
    mid = db.add_message(scope, NewMessage(conv, role, text))
    add(db, scope, text, kind="message", source=f"message:{role}", source_message_id=mid,
        conversation=conv, speaker=role)  # fmt: skip
    return mid


def row_of(db: StorageBackend, scope: Scope, message_id: int) -> int:
    return next(m.id for m in db.list_memories(scope, ALL) if m.source_message_id == message_id)
