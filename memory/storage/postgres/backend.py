"""PostgresBackend: the :class:`StorageBackend` protocol over PostgreSQL with
pgvector (docs/storage.md, "PostgreSQL").

One psycopg connection in autocommit mode; ``transaction()`` opens ``BEGIN``
at the outermost block and a savepoint inside (psycopg's own nesting). Ids
come from identity sequences, which never go back, so none is reused. The
Scope is applied in every query; connected as a member role (row-level
security, :mod:`.rls`), a call for another profile is refused before any SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg
from pgvector.psycopg import register_vector

from ... import timeutil
from ...errors import EmbedderMismatchError, NotFoundError, UsageError
from ..protocol import Scrub, StorageBackend
from ..records import (
    NEW_MEMORY_COLUMNS,
    Counts,
    ForgetResult,
    Lineage,
    Memory,
    MemoryFilter,
    MemoryPatch,
    NewMemory,
)
from ..scope import Scope
from . import lineage as _lineage
from . import migrations
from .base import Base, word_count
from .bulk import BulkMixin
from .connection import connect, redact, translate
from .conversations import ConversationsMixin
from .documents import DocumentsMixin
from .filters import MEMORY_COLUMNS, filter_sql, memory_of, scope_sql, storable
from .legs import LegsMixin
from .lifecycle import LifecycleMixin
from .reindex import ReindexMixin
from .transfer import TransferMixin

_NOT_FOUND = "No memory with id {}: see `mem list` for ids."


class PostgresBackend(
    ConversationsMixin,
    DocumentsMixin,
    LegsMixin,
    LifecycleMixin,
    TransferMixin,
    ReindexMixin,
    BulkMixin,
    Base,
):
    """mem's server backend: PostgreSQL 16 + pgvector, one database."""

    name = "postgres"
    encrypted = False  # at rest it is the server's disk encryption, not mem's

    @classmethod
    def open(
        cls,
        url: str,
        *,
        embedder: str | None = None,
        dim: int | None = None,
        scope: Scope | None = None,
        pick: Callable[[str | None, int | None], Any] | None = None,
        allow_embedder_change: bool = False,
    ) -> PostgresBackend:
        """Connect, bring the schema up to date (the owner) or check it is
        (a member), and check the embedder as ``SQLiteBackend.open`` does.
        ``scope``: the profile this connection will act for; a member role
        connecting for another profile is refused here. ``pick`` (as for
        ``SQLiteBackend.open``): given the stored embedder and dimension (None,
        None when new), returns the embedder to use (``.name``, ``.dim``)."""
        if not url:
            raise UsageError("No PostgreSQL URL: give postgresql://user@host/dbname.")
        where = redact(url)
        conn = connect(url)
        try:
            migrations.migrate(conn, where)
            with conn.transaction():
                migrations.lock(conn)  # two first opens make one vector table
                stored = dict(
                    conn.execute(
                        "SELECT key, value FROM meta WHERE key IN ('embedder', 'embedder_dim')"
                    ).fetchall()
                )
                if pick is not None:
                    dim_stored = stored.get("embedder_dim")
                    chosen = pick(stored.get("embedder"), int(dim_stored) if dim_stored else None)
                    embedder, dim = str(chosen.name), int(chosen.dim)
                if "embedder" not in stored:
                    if not embedder or not dim:
                        raise UsageError(
                            f"The PostgreSQL database at {where} is new: give the embedder "
                            "and its dimension."
                        )
                    migrations.create_vector_table(conn, dim)
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('embedder', %s), "
                        "('embedder_dim', %s)",
                        [embedder, str(int(dim))],
                    )
                    stored = {"embedder": embedder, "embedder_dim": str(int(dim))}
                elif embedder and stored["embedder"] != embedder and not allow_embedder_change:
                    raise EmbedderMismatchError(
                        f"This database's vectors were built with {stored['embedder']}, not "
                        f"{embedder}: run `mem reindex --embedder {embedder}` to rebuild them."
                    )
            register_vector(conn)
            backend = cls(conn, where, int(stored["embedder_dim"]))
            if scope is not None:
                backend.check(scope)
        except psycopg.Error as err:
            conn.close()
            raise translate(err, url) from None
        except BaseException:
            conn.close()
            raise
        return backend

    def get_meta(self, scope: Scope, key: str) -> str | None:
        row = self.x("SELECT value FROM meta WHERE key = %s", [key]).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, scope: Scope, key: str, value: str) -> None:
        self.check(scope)
        self.x(
            "INSERT INTO meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )

    # ------------------------------------------------------------- memories
    def add_memory(self, scope: Scope, memory: NewMemory, vector: Sequence[float]) -> int:
        m = memory
        m.check()
        vec = self._query_vector(vector)
        with self.transaction(scope):
            if m.source_message_id is not None and self.message(scope, m.source_message_id) is None:
                raise NotFoundError(f"No message with id {m.source_message_id}.")
            if m.conversation is not None and not self._own_conversation(scope, m.conversation):
                raise NotFoundError(f"No conversation {m.conversation!r}.")
            row = self.x(
                f"INSERT INTO memories ({NEW_MEMORY_COLUMNS}, metadata, tokens) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
                [
                    *m.values(scope.writes, timeutil.now_iso()),
                    psycopg.types.json.Jsonb(m.metadata),
                    word_count(m.content, m.speaker),
                ],  # fmt: skip
            ).fetchone()
            assert row is not None
            memory_id = int(row[0])
            self.x(
                "INSERT INTO memory_vectors (id, profile, embedding) VALUES (%s, %s, %s)",
                [memory_id, scope.writes, vec],
            )
        return memory_id

    def _own_memory(self, scope: Scope, memory_id: int) -> Memory:
        row = self.x(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.id = %s AND m.profile = %s",
            [(storable([memory_id]) or [0])[0], scope.writes],
        ).fetchone()
        if row is None:
            raise NotFoundError(_NOT_FOUND.format(memory_id))
        return memory_of(row)

    def update_memory(
        self,
        scope: Scope,
        memory_id: int,
        patch: MemoryPatch,
        vector: Sequence[float] | None = None,
    ) -> Memory:
        if patch.content is not None and vector is None:
            raise UsageError("A new text needs its vector.")
        vec = self._query_vector(vector) if patch.content is not None and vector else None
        now = timeutil.now_iso()
        with self.transaction(scope):
            old = self._own_memory(scope, memory_id)
            sets: dict[str, Any] = {"updated_at": now}
            if patch.content is not None:
                sets["content"] = patch.content.strip()
                sets["tokens"] = word_count(sets["content"], old.speaker)
            if patch.importance is not None:
                sets["importance"] = patch.importance
            if patch.superseded_by is not None:
                self.memory(scope, patch.superseded_by)  # readable, or NotFoundError
                sets["superseded_by"] = patch.superseded_by
                sets["valid_until"] = patch.valid_until or now
            elif patch.valid_until is not None:
                sets["valid_until"] = patch.valid_until
            if patch.clear_supersession:
                sets["superseded_by"] = sets["valid_until"] = None
            if patch.expires_at is not None:
                sets["expires_at"] = patch.expires_at
            if patch.metadata is not None:
                sets["metadata"] = psycopg.types.json.Jsonb(patch.metadata)
            assignments = ", ".join(f"{k} = %s" for k in sets)
            self.x(f"UPDATE memories SET {assignments} WHERE id = %s", [*sets.values(), memory_id])
            if vec is not None:
                self.x("UPDATE memory_vectors SET embedding = %s WHERE id = %s", [vec, memory_id])
        return self.memory(scope, memory_id)

    def touch(self, scope: Scope, ids: Iterable[int], at: str) -> None:
        self.check(scope)
        wanted = storable(ids)
        if wanted:
            where, params = scope_sql(scope)
            self.x(
                "UPDATE memories m SET use_count = use_count + 1, last_used_at = %s "
                f"WHERE m.id = ANY(%s) AND {where}",
                [at, wanted, *params],
            )

    def memory(self, scope: Scope, memory_id: int) -> Memory:
        found = self.memories(scope, [memory_id])
        if not found:
            raise NotFoundError(_NOT_FOUND.format(memory_id))
        return found[0]

    def memories(self, scope: Scope, ids: Iterable[int]) -> list[Memory]:
        self.check(scope)
        wanted = storable(ids)
        where, params = scope_sql(scope)
        rows = self.x(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} AND m.id = ANY(%s)",
            [*params, wanted],
        ).fetchall()
        found = {m.id: m for m in map(memory_of, rows)}
        return [found[i] for i in dict.fromkeys(wanted) if i in found]

    def list_memories(
        self, scope: Scope, filters: MemoryFilter, *, limit: int | None = None
    ) -> list[Memory]:
        self.check(scope)
        where, params = filter_sql(scope, filters)
        query = f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} ORDER BY m.id DESC"
        if limit:
            query += f" LIMIT {int(limit)}"
        return [memory_of(r) for r in self.x(query, params).fetchall()]

    def counts(self, scope: Scope) -> Counts:
        self.check(scope)
        where, params = scope_sql(scope)
        kinds = {
            str(k): (int(a), int(t) - int(a))
            for k, t, a in self.x(
                "SELECT kind, count(*), count(*) FILTER (WHERE superseded_by IS NULL "
                f"AND valid_until IS NULL) FROM memories m WHERE {where} GROUP BY kind "
                "ORDER BY kind",
                params,
            ).fetchall()
        }
        row = self.x(
            "SELECT (SELECT count(*) FROM messages WHERE profile = %s), "
            "(SELECT count(*) FROM conversations WHERE profile = %s)",
            [scope.writes, scope.writes],
        ).fetchone()
        assert row is not None
        return Counts(kinds, int(row[0]), int(row[1]))

    def delete_memories(
        self, scope: Scope, ids: Iterable[int], *, reason: str, actor: str = "user"
    ) -> list[int]:
        deleted: list[int] = []
        with self.transaction(scope):
            for memory_id in ids:
                try:
                    mem = self._own_memory(scope, memory_id)
                except NotFoundError:
                    continue
                detail = {"kind": mem.kind, "source": mem.source, "reason": reason}
                _lineage.delete_row(self, memory_id, detail=detail, actor=actor)
                deleted.append(memory_id)
        return deleted

    # ------------------------------------------------ lineage and forgetting
    def lineage(self, scope: Scope, message_ids: Iterable[int]) -> Lineage:
        self.check(scope)
        return _lineage.lineage(self, scope, message_ids)

    def forget(
        self,
        scope: Scope,
        ids: Sequence[int],
        *,
        with_source: bool = False,
        scrub: Scrub | None = None,
        at: str = "",
    ) -> ForgetResult:
        with self.transaction(scope):
            result = _lineage.forget(self, scope, ids, with_source=with_source, scrub=scrub, at=at)
        if not self.in_transaction and not self.scrub(scope):
            result.scrub_pending = True
            result.scrub_hint = (
                f"Forgotten, but PostgreSQL keeps the old text in dead rows and the keyword "
                f"index until the database owner runs `mem admin scrub` (role {self.role!r} "
                "may not VACUUM tables it does not own)."
                if not self.trusted
                else "Forgotten, but another session holds a lock or an old snapshot, so "
                "PostgreSQL keeps the old text in dead rows until `mem admin scrub` runs "
                "after it."
            )
        return result

    def scrub(self, scope: Scope) -> bool:
        self.check(scope)
        return _lineage.vacuum(self)


def _conforms(backend: PostgresBackend) -> StorageBackend:
    """mypy checks here that the class implements the whole protocol."""
    return backend
