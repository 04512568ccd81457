"""Rebuilding every vector for another embedder, over SQLite.

The new vectors are built beside the old ones, in ``memory_vectors_new``: a
batch at a time, embedded with no lock held, each batch written in a short
transaction. One last transaction swaps them in and records the new
embedder. Until then the old vectors and embedder stay in force, so a
reindex that is interrupted changes nothing, and the next one for the same
embedder resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from memory.errors import DatabaseBusyError
from memory.models.embed import pack
from memory.storage.sqlite.db import Connection, transaction
from memory.storage.sqlite.opening import set_meta

Embed = Callable[[list[str]], Sequence[Sequence[float]]]
Progress = Callable[[int, int], None]


def _meta(conn: Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return None if row is None else str(row[0])


def _last_event(conn: Connection) -> int:
    return int(conn.execute("SELECT max(id) FROM memory_events").fetchone()[0] or 0)


def reindex(
    conn: Connection,
    name: str,
    dim: int,
    embed: Embed,
    *,
    progress: Progress | None = None,
    batch: int = 256,
) -> int:
    """Rebuild every vector with ``embed`` (the embedder ``name`` of ``dim``);
    returns how many memories there are."""
    target = f"{name}:{dim}"
    with transaction(conn):
        if _meta(conn, "reindex_to") != target:
            conn.execute("DROP TABLE IF EXISTS memory_vectors_new")
            set_meta(conn, "reindex_to", target)
            set_meta(conn, "reindex_since", str(_last_event(conn)))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS memory_vectors_new (id INTEGER PRIMARY KEY "
            "REFERENCES memories(id) ON DELETE CASCADE, vector BLOB NOT NULL)"
        )
    since = int(_meta(conn, "reindex_since") or 0)
    total = int(conn.execute("SELECT count(*) FROM memories").fetchone()[0])
    done = int(conn.execute("SELECT count(*) FROM memory_vectors_new").fetchone()[0])
    # A memory whose text changed (an 'update' event) after its new vector was
    # made is embedded again; the audit trail says which, without timestamps.
    changed_sql = (
        "SELECT DISTINCT memory_id FROM memory_events WHERE id > ? AND event = 'update' "
        "AND memory_id IN (SELECT id FROM memory_vectors_new)"
    )
    for _ in range(5):
        stale = [int(r[0]) for r in conn.execute(changed_sql, [since]).fetchall()]
        since = _last_event(conn)
        done = _fill_new_vectors(conn, embed, stale, done, total, batch, progress)
        with transaction(conn):
            missing = conn.execute(
                "SELECT count(*) FROM memories m LEFT JOIN memory_vectors_new v "
                "ON v.id = m.id WHERE v.id IS NULL"
            ).fetchone()[0]
            changed = conn.execute(changed_sql + " LIMIT 1", [since]).fetchone()
            if not missing and changed is None:
                _swap_vectors(conn, name, dim)
                return int(conn.execute("SELECT count(*) FROM memories").fetchone()[0])
        # Written meanwhile by another process: those are embedded next round.
    raise DatabaseBusyError(
        "Other processes kept changing memories during the reindex: stop them and run "
        "`mem reindex` again (it resumes where it stopped)."
    )


def _fill_new_vectors(
    conn: Connection,
    embed: Embed,
    stale: list[int],
    done: int,
    total: int,
    batch: int,
    progress: Progress | None,
) -> int:
    """Embed (no lock held) and write the rows that have no new vector yet,
    and the ``stale`` ones again; returns how many are done."""
    last = 0
    while True:
        if stale:
            ids, stale = stale[:batch], stale[batch:]
            marks = ",".join("?" * len(ids))
            rows = conn.execute(
                f"SELECT id, content FROM memories WHERE id IN ({marks})", ids
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT m.id, m.content FROM memories m LEFT JOIN memory_vectors_new v "
                "ON v.id = m.id WHERE m.id > ? AND v.id IS NULL ORDER BY m.id LIMIT ?",
                [last, batch],
            ).fetchall()
            if not rows:
                return done
            last = int(rows[-1][0])
            done += len(rows)
        vectors = embed([str(t) for _, t in rows])
        with transaction(conn):
            conn.executemany(
                "INSERT OR REPLACE INTO memory_vectors_new(id, vector) "
                "SELECT ?, ? WHERE EXISTS (SELECT 1 FROM memories WHERE id = ?)",
                [(mid, pack(vec), mid) for (mid, _), vec in zip(rows, vectors, strict=True)],
            )
        if progress:
            progress(min(done, total), total)


def _swap_vectors(conn: Connection, name: str, dim: int) -> None:
    """Inside the caller's transaction: the new vectors become the index."""
    conn.execute("DROP TABLE IF EXISTS memories_vec")
    conn.execute("DROP TABLE IF EXISTS memory_vectors")
    conn.execute("ALTER TABLE memory_vectors_new RENAME TO memory_vectors")
    conn.execute(
        f"CREATE VIRTUAL TABLE memories_vec USING vec0(id INTEGER PRIMARY KEY, "
        f"embedding bit[{int(dim)}])"
    )
    conn.execute(
        "INSERT INTO memories_vec(id, embedding) "
        "SELECT id, vec_quantize_binary(vec_f32(vector)) FROM memory_vectors ORDER BY id"
    )
    set_meta(conn, "embedder", name)
    set_meta(conn, "embedder_dim", str(int(dim)))
    conn.execute("DELETE FROM meta WHERE key IN ('reindex_to', 'reindex_since')")
