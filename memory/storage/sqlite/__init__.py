"""The SQLite backend of the storage seam (mem's embedded default)."""

from __future__ import annotations

from memory.storage.sqlite.backend import SQLiteBackend

__all__ = ["SQLiteBackend"]
