"""What every part of :class:`~memory.store.MemoryStore` stands on: the
backend (the storage seam), the scope of the profile, the embedder and the
secret policy. No SQL here or anywhere in the store: every read and write is
a call of the :class:`~memory.storage.protocol.StorageBackend` with a scope."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from memory.config import SYSTEM_PROFILE
from memory.models.embed import Embedder
from memory.records import Memory
from memory.storage.protocol import StorageBackend
from memory.storage.scope import Scope


def storable_id(value: int) -> bool:
    """Whether ``value`` can be a row id at all (SQLite's are 64-bit): a larger
    one is simply not found, never an overflow."""
    return 0 < value < 2**63


class StoreBase:
    """The store's state; see :class:`memory.store.MemoryStore`."""

    def __init__(
        self,
        backend: StorageBackend,
        path: Path,
        embedder: Embedder,
        profile: str,
        *,
        secrets: str = "redact",
    ) -> None:
        self.backend = backend
        self.path = path
        self.embedder = embedder
        self.profile = profile
        self.secrets = secrets
        # search's recency half-life (config ``recency_half_life_days``; ranking's default)
        self.half_life_days: float = 30.0
        self._scope = Scope(profile, self.readable_profiles()[1:])
        self._sqlite_utils_db: Any = None
        # A server database's URL (with any password: to reopen it, never to
        # print); ``path`` is then a place for the files that sit beside a
        # SQLite database (the REPL's input history).
        self.url: str | None = None

    @property
    def scope(self) -> Scope:
        """What every storage call of this store may see: the profile and ``system``."""
        if self._scope.profile != self.profile:
            self._scope = Scope(self.profile, self.readable_profiles()[1:])
        return self._scope

    @property
    def target(self) -> Path | str:
        """What :meth:`MemoryStore.open` opens this database by again."""
        return self.url if self.url is not None else self.path

    @property
    def location(self) -> str:
        """The database as shown to the user: the file, or the server's URL
        without its password."""
        if self.url is None:
            return str(self.path)
        return str(getattr(self.backend, "where", "a PostgreSQL server"))

    @property
    def conn(self) -> Any:
        """The SQLite connection under the backend, for the verbs not yet moved
        onto the seam (None for a backend with none)."""
        return getattr(self.backend, "conn", None)

    def readable_profiles(self) -> tuple[str, ...]:
        """A profile reads its own rows and the shared ``system`` namespace."""
        if self.profile == SYSTEM_PROFILE:
            return (SYSTEM_PROFILE,)
        return (self.profile, SYSTEM_PROFILE)

    def writer(self, profile: str) -> Scope:
        """The scope that writes ``profile``'s namespace while reading what
        this store reads (a readable memory of the shared namespace is
        updated, superseded and audited where it lives)."""
        return self.scope if profile == self.profile else Scope(profile, self.scope.readable)

    def meta(self, key: str) -> str | None:
        return self.backend.get_meta(self.scope, key)

    def _set_meta(self, key: str, value: str) -> None:
        self.backend.set_meta(self.scope, key, value)

    def get(self, memory_id: int) -> Memory:
        """One readable memory, or NotFoundError."""
        return self.backend.memory(self.scope, memory_id)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing twice is harmless
            self.backend.close()

    @property
    def db(self) -> Any:
        """The same connection as a ``sqlite_utils.Database`` (imported lazily)."""
        if self._sqlite_utils_db is None:
            from sqlite_utils import Database

            self._sqlite_utils_db = Database(self.conn)
        return self._sqlite_utils_db
