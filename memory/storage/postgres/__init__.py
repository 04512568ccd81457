"""The PostgreSQL backend of the storage seam (shared memory on a server):
PostgreSQL 16 with pgvector, row-level security per profile role. Imported
only when a ``postgres`` backend is opened: SQLite users never load psycopg."""

from __future__ import annotations

from .backend import PostgresBackend
from .connection import PermissionDeniedError, redact

__all__ = ["PermissionDeniedError", "PostgresBackend", "redact"]
