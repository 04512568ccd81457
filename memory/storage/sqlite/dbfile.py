"""Facts about the database file that both the connection (:mod:`memory.storage.sqlite.db`)
and the cipher (:mod:`memory.storage.sqlite.crypto`) need: kept here so that db opens crypto
and crypto never imports db back (a cycle the import contracts forbid)."""

from __future__ import annotations

import importlib.util
import os

from memory.errors import DatabaseError

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000


def vec_extension_path() -> str:
    """Path of sqlite-vec's loadable library, without importing the package."""
    spec = importlib.util.find_spec("sqlite_vec")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseError("sqlite-vec is not installed: run `pip install sqlite-vec`.")
    return os.path.join(next(iter(spec.submodule_search_locations)), "vec0")
