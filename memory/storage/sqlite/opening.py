"""Opening mem's SQLite file for the engine: schema, the embedder check,
the vector tables of a new file, a scrub left pending.

The engine picks the embedder (``pick``: given the one the file was built
with, or None for a new file) and this module makes the file agree: a file
whose vectors are incomplete is refused (``mem reindex``), and a new file
gets vector tables for the picked embedder, unless another process created
them first (then the file is opened again, so its embedder is checked like
any other)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from memory.errors import DatabaseError, IndexIncompleteError, UsageError
from memory.storage.sqlite.db import Connection, connect, transaction, translate
from memory.storage.sqlite.schema import ensure_schema


class Picked(Protocol):
    name: str
    dim: int


Pick = Callable[[str | None, int | None], Picked]


def open_picked(
    path: str | os.PathLike[str], pick: Pick, *, allow_embedder_change: bool = False
) -> tuple[Connection, Path]:
    """The file's connection, ready for :class:`SQLiteBackend` (and its path)."""
    from memory.storage.sqlite.scrub import finish_pending_scrub

    target = Path(path)
    conn = connect(target)
    try:
        ensure_schema(conn)
        stored = dict(
            conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('embedder', 'embedder_dim')"
            ).fetchall()
        )
        stored_name = stored.get("embedder")
        stored_dim = int(stored["embedder_dim"]) if "embedder_dim" in stored else None
        chosen = pick(stored_name, stored_dim)
        if stored_name is not None and not allow_embedder_change:
            check_vectors(conn, target)
        if stored_name is not None:
            finish_pending_scrub(conn)
        if stored_name is None and not create_vector_tables(
            conn, chosen.name, chosen.dim, only_if_missing=True
        ):
            conn.close()
            return open_picked(path, pick, allow_embedder_change=allow_embedder_change)
    except BaseException as err:
        conn.close()
        if isinstance(err, DatabaseError | UsageError):
            raise
        driver = type(err).__module__.startswith(("sqlean", "sqlcipher3"))
        if isinstance(err, Exception) and driver:
            raise translate(err, target) from None
        raise
    return conn, target


def check_vectors(conn: Connection, path: Path) -> None:
    """Every memory has its vector: counts compared (an index scan of small
    rows, not of the vectors), so a half-built index cannot pass unnoticed."""
    # One statement, so that both counts come from the same snapshot.
    sql = "SELECT (SELECT count(*) FROM memories), (SELECT count(*) FROM {})"
    try:  # sqlite-vec's table of ids: small rows, cheap to count
        row = conn.execute(sql.format("memories_vec_rowids")).fetchone()
    except Exception:  # another sqlite-vec layout: count the float vectors
        row = conn.execute(sql.format("memory_vectors")).fetchone()
    memories, vectors = int(row[0]), int(row[1])
    if memories > vectors:
        raise IndexIncompleteError(
            f"{memories - vectors} of the {memories} memories in {path} have no "
            "vector (an interrupted reindex?): run `mem reindex` to rebuild them."
        )
    if memories < vectors:
        raise IndexIncompleteError(
            f"The vector index of {path} holds vectors of deleted memories: run "
            "`mem reindex` to rebuild it."
        )


def set_meta(conn: Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )


def create_vector_tables(
    conn: Connection, embedder: str, dim: int, *, only_if_missing: bool = False
) -> bool:
    """(Re)create the vector tables for this embedder; with ``only_if_missing``
    do nothing (False) when another process created them first."""
    with transaction(conn):
        if only_if_missing:
            row = conn.execute("SELECT 1 FROM meta WHERE key = 'embedder'").fetchone()
            if row is not None:
                return False
        conn.execute("DROP TABLE IF EXISTS memories_vec")
        conn.execute("DROP TABLE IF EXISTS memory_vectors")
        conn.execute(
            "CREATE TABLE memory_vectors (id INTEGER PRIMARY KEY "
            "REFERENCES memories(id) ON DELETE CASCADE, vector BLOB NOT NULL)"
        )
        conn.execute(
            f"CREATE VIRTUAL TABLE memories_vec USING vec0("
            f"id INTEGER PRIMARY KEY, embedding bit[{int(dim)}])"
        )
        set_meta(conn, "embedder", embedder)
        set_meta(conn, "embedder_dim", str(int(dim)))
    return True
