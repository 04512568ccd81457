"""Rebuilding every vector for another embedder, over PostgreSQL.

As in SQLite (:mod:`memory.storage.sqlite.reindex`): the new vectors are built
beside the old ones, in ``memory_vectors_new`` (its column carries the new
dimension), a batch at a time, embedded with no transaction open. One last
transaction swaps the tables, rebuilds the HNSW index and the row-level
policies and records the new embedder. Interrupted, nothing changed, and the
next reindex for the same embedder resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pgvector import Vector
from psycopg import sql

from ...errors import DatabaseBusyError
from ..scope import Scope
from . import migrations, rls
from .base import Base

Embed = Callable[[list[str]], Sequence[Sequence[float]]]
Progress = Callable[[int, int], None]

_CHANGED = (
    "SELECT DISTINCT memory_id FROM memory_events WHERE id > %s AND event = 'update' "
    "AND memory_id IN (SELECT id FROM memory_vectors_new)"
)


class ReindexMixin(Base):
    def _meta_value(self, key: str) -> str | None:
        row = self.x("SELECT value FROM meta WHERE key = %s", [key]).fetchone()
        return None if row is None else str(row[0])

    def _put_meta(self, key: str, value: str) -> None:
        self.x(
            "INSERT INTO meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )

    def _last_event(self) -> int:
        row = self.x("SELECT coalesce(max(id), 0) FROM memory_events").fetchone()
        return int(row[0]) if row else 0

    def _count(self, query: str) -> int:
        row = self.x(query).fetchone()
        return int(row[0]) if row else 0

    def reindex(
        self,
        scope: Scope,
        embedder: str,
        dim: int,
        embed: Embed,
        *,
        progress: Progress | None = None,
        batch: int = 256,
    ) -> int:
        target = f"{embedder}:{int(dim)}"
        with self.transaction(scope):
            migrations.lock(self.conn)
            if self._meta_value("reindex_to") != target:
                self.x("DROP TABLE IF EXISTS memory_vectors_new")
                self._put_meta("reindex_to", target)
                self._put_meta("reindex_since", str(self._last_event()))
            self.x(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS memory_vectors_new (id bigint PRIMARY KEY "
                    "REFERENCES memories (id) ON DELETE CASCADE, profile text NOT NULL, "
                    "embedding vector({}) NOT NULL)"
                )
                .format(sql.Literal(int(dim)))
                .as_string(self.conn)
            )
        since = int(self._meta_value("reindex_since") or 0)
        total = self._count("SELECT count(*) FROM memories")
        done = self._count("SELECT count(*) FROM memory_vectors_new")
        for _ in range(5):
            stale = [int(r[0]) for r in self.x(_CHANGED, [since]).fetchall()]
            since = self._last_event()
            done = self._fill(scope, embed, stale, done, total, batch, progress)
            with self.transaction(scope):
                migrations.lock(self.conn)
                missing = self.x(
                    "SELECT 1 FROM memories m WHERE NOT EXISTS "
                    "(SELECT 1 FROM memory_vectors_new v WHERE v.id = m.id) LIMIT 1"
                ).fetchone()
                changed = self.x(_CHANGED + " LIMIT 1", [since]).fetchone()
                if missing is None and changed is None:
                    self._swap(embedder, dim)
                    return self._count("SELECT count(*) FROM memories")
        raise DatabaseBusyError(
            "Other sessions kept changing memories during the reindex: stop them and run "
            "`mem reindex` again (it resumes where it stopped)."
        )

    def _fill(
        self,
        scope: Scope,
        embed: Embed,
        stale: list[int],
        done: int,
        total: int,
        batch: int,
        progress: Progress | None,
    ) -> int:
        """Embed (no transaction open) and write the rows without a new vector,
        and the ``stale`` ones again; returns how many are done."""
        last = 0
        while True:
            if stale:
                ids, stale = stale[:batch], stale[batch:]
                rows = self.x(
                    "SELECT id, content, profile FROM memories WHERE id = ANY(%s)", [ids]
                ).fetchall()
            else:
                rows = self.x(
                    "SELECT m.id, m.content, m.profile FROM memories m WHERE m.id > %s "
                    "AND NOT EXISTS (SELECT 1 FROM memory_vectors_new v WHERE v.id = m.id) "
                    "ORDER BY m.id LIMIT %s",
                    [last, batch],
                ).fetchall()
                if not rows:
                    return done
                last = int(rows[-1][0])
                done += len(rows)
            vectors = embed([str(r[1]) for r in rows]) if rows else []
            with self.transaction(scope):
                for (mid, _, profile), vec in zip(rows, vectors, strict=True):
                    self.x(
                        "INSERT INTO memory_vectors_new (id, profile, embedding) "
                        "SELECT %s, %s, %s WHERE EXISTS (SELECT 1 FROM memories WHERE id = %s) "
                        "ON CONFLICT (id) DO UPDATE SET embedding = excluded.embedding",
                        [mid, profile, Vector(list(vec)), mid],
                    )
            if progress:
                progress(min(done, total), total)

    def _swap(self, embedder: str, dim: int) -> None:
        """Inside the caller's transaction: the new vectors become the index."""
        self.x("DROP TABLE IF EXISTS memory_vectors")
        self.x("ALTER TABLE memory_vectors_new RENAME TO memory_vectors")
        self.x("ALTER INDEX memory_vectors_new_pkey RENAME TO memory_vectors_pkey")
        self.x(
            "CREATE INDEX memory_vectors_hnsw ON memory_vectors "
            "USING hnsw (embedding vector_cosine_ops)"
        )
        rls.install(self.conn, ("memory_vectors",))
        self._put_meta("embedder", embedder)
        self._put_meta("embedder_dim", str(int(dim)))
        self.x("DELETE FROM meta WHERE key IN ('reindex_to', 'reindex_since')")
        self.dim = int(dim)
