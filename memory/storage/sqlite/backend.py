"""SQLiteBackend: the :class:`StorageBackend` protocol over mem's SQLite file.

The engine's :class:`memory.store.MemoryStore` works through this backend
(opened with :mod:`.opening`; vectors rebuilt by :mod:`.reindex`). Search legs
live in :mod:`.legs` (over :mod:`.keywords` and :mod:`.search`), deletion and
lineage in :mod:`.lineage`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from memory import timeutil
from memory.errors import DatabaseError, EmbedderMismatchError, NotFoundError, UsageError
from memory.privacy.history import is_encrypted
from memory.records import MEMORY_COLUMNS, memory_from_row
from memory.storage.protocol import Scrub, StorageBackend
from memory.storage.records import (
    NEW_MEMORY_COLUMNS,
    Counts,
    ForgetResult,
    Lineage,
    Memory,
    MemoryFilter,
    MemoryPatch,
    NewMemory,
    NewMessage,
)
from memory.storage.scope import Scope
from memory.storage.sqlite import keyword_stats
from memory.storage.sqlite import lineage as _lineage
from memory.storage.sqlite.conversations import ConversationsMixin
from memory.storage.sqlite.db import Connection, connect, transaction, translate
from memory.storage.sqlite.documents import DocumentsMixin
from memory.storage.sqlite.events import EventsMixin
from memory.storage.sqlite.filters import filter_sql, marks, scope_sql
from memory.storage.sqlite.legs import SearchLegsMixin
from memory.storage.sqlite.lifecycle import LifecycleMixin
from memory.storage.sqlite.opening import Pick, create_vector_tables, open_picked
from memory.storage.sqlite.reindex import Embed, Progress
from memory.storage.sqlite.reindex import reindex as _reindex
from memory.storage.sqlite.schema import ensure_schema
from memory.storage.sqlite.transfer import TransferMixin

_NOT_FOUND = "No memory with id {}: see `mem list` for ids."
_M_COLUMNS = ", ".join(f"m.{c.strip()}" for c in MEMORY_COLUMNS.split(","))


class SQLiteBackend(
    ConversationsMixin,
    DocumentsMixin,
    EventsMixin,
    LifecycleMixin,
    TransferMixin,
    SearchLegsMixin,
):
    """mem's embedded default backend: one SQLite file (sqlean + sqlite-vec)."""

    name = "sqlite"

    @property
    def encrypted(self) -> bool:
        return is_encrypted(self.conn)

    def __init__(self, conn: Connection, path: Path | None = None) -> None:
        self.conn = conn
        self.path = path
        dim = self.get_meta(Scope("system"), "embedder_dim")
        self.dim = int(dim) if dim else 0

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        embedder: str | None = None,
        dim: int | None = None,
        pick: Pick | None = None,
        allow_embedder_change: bool = False,
    ) -> SQLiteBackend:
        """Open (creating) a mem database. A new file needs the ``embedder``
        name and ``dim`` its vector tables are built for; an existing one
        built for another embedder is refused (``mem reindex``). The engine
        passes ``pick`` instead (see :mod:`memory.storage.sqlite.opening`)."""
        if pick is not None:
            return cls(*open_picked(path, pick, allow_embedder_change=allow_embedder_change))
        target = Path(path)
        conn = connect(target)
        try:
            ensure_schema(conn)
            stored = dict(
                conn.execute(
                    "SELECT key, value FROM meta WHERE key IN ('embedder', 'embedder_dim')"
                ).fetchall()
            )
            if "embedder" not in stored:
                if not embedder or not dim:
                    raise UsageError(f"{target} is new: give the embedder and its dimension.")
                create_vector_tables(conn, embedder, dim)
            elif embedder and stored["embedder"] != embedder:
                raise EmbedderMismatchError(
                    f"This database's vectors were built with {stored['embedder']}, not "
                    f"{embedder}: run `mem reindex --embedder {embedder}` to rebuild them."
                )
            backend = cls(conn, target)
            if backend.get_meta(Scope("system"), _lineage.PENDING_KEY) is not None:
                with contextlib.suppress(DatabaseError):
                    backend.scrub(Scope("system"))
        except BaseException as err:
            conn.close()
            if isinstance(err, Exception) and type(err).__module__.startswith("sqlean"):
                raise translate(err, target) from None
            raise
        return backend

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()

    @contextlib.contextmanager
    def transaction(self, scope: Scope) -> Iterator[None]:
        with transaction(self.conn):
            yield

    def get_meta(self, scope: Scope, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, scope: Scope, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )

    # ------------------------------------------------------------- memories
    def _index(self, memory_id: int, content: str, speaker: str | None, blob: bytes) -> None:
        self.conn.execute(
            "INSERT INTO memories_fts(rowid, content, speaker) VALUES (?, ?, ?)",
            [memory_id, content, speaker or ""],
        )
        keyword_stats.count_row(self.conn, memory_id, 1)
        self.conn.execute("INSERT INTO memory_vectors(id, vector) VALUES (?, ?)", [memory_id, blob])
        self.conn.execute(
            "INSERT INTO memories_vec(id, embedding) VALUES (?, vec_quantize_binary(vec_f32(?)))",
            [memory_id, blob],
        )

    def add_messages(
        self,
        scope: Scope,
        batch: Sequence[tuple[NewMessage, NewMemory | None, Sequence[float]]],
    ) -> list[int]:
        ids: list[int] = []
        owned: set[str] = set()  # one ownership check per conversation, not per line
        with transaction(self.conn):
            for message, memory, vector in batch:
                ids.append(self._add_message(scope, message, owned))
                if memory is not None:
                    memory = replace(memory, source_message_id=ids[-1])
                    self._add_memory(scope, memory, vector, owned)
        return ids

    def add_memory(self, scope: Scope, memory: NewMemory, vector: Sequence[float]) -> int:
        with transaction(self.conn):
            return self._add_memory(scope, memory, vector, None)

    def _add_memory(
        self, scope: Scope, memory: NewMemory, vector: Sequence[float], owned: set[str] | None
    ) -> int:
        """:meth:`add_memory` in the caller's transaction. With ``owned`` (a batch
        of :meth:`add_messages`), its source message was just written and the
        conversations in ``owned`` were found the scope's."""
        m = memory
        m.check()
        blob = self._check_vector(vector)
        if owned is None and m.source_message_id is not None:
            if self.message(scope, m.source_message_id) is None:
                raise NotFoundError(f"No message with id {m.source_message_id}.")
        if m.conversation is not None and m.conversation not in (owned or ()):
            if not self._own_conversation(scope, m.conversation):
                raise NotFoundError(f"No conversation {m.conversation!r}.")
        next_id = self.conn.execute(
            "SELECT max((SELECT coalesce(max(CAST(value AS INTEGER)), 0) FROM meta "
            "WHERE key = 'memory_id_floor'), (SELECT coalesce(max(id), 0) FROM memories))"
        ).fetchone()[0]
        cur = self.conn.execute(
            f"INSERT INTO memories(id, {NEW_MEMORY_COLUMNS}, metadata) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [int(next_id) + 1, *m.values(scope.writes, timeutil.now_iso()), json.dumps(m.metadata)],
        )
        memory_id = int(cur.lastrowid)
        self._index(memory_id, m.content, m.speaker, blob)
        return memory_id

    def _own_memory(self, scope: Scope, memory_id: int) -> Memory:
        row = self.conn.execute(
            f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ? AND profile = ?",
            [memory_id if _lineage.storable_id(memory_id) else 0, scope.writes],
        ).fetchone()
        if row is None:
            raise NotFoundError(_NOT_FOUND.format(memory_id))
        return memory_from_row(row)

    def update_memory(
        self,
        scope: Scope,
        memory_id: int,
        patch: MemoryPatch,
        vector: Sequence[float] | None = None,
    ) -> Memory:
        if patch.content is not None and vector is None:
            raise UsageError("A new text needs its vector.")
        blob = self._check_vector(vector) if patch.content is not None and vector else b""
        now = timeutil.now_iso()
        with transaction(self.conn):
            old = self._own_memory(scope, memory_id)
            sets: dict[str, Any] = {"updated_at": now}
            if patch.content is not None:
                sets["content"] = patch.content.strip()
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
                sets["metadata"] = json.dumps(patch.metadata)
            assignments = ", ".join(f"{k} = ?" for k in sets)
            self.conn.execute(
                f"UPDATE memories SET {assignments} WHERE id = ?", [*sets.values(), memory_id]
            )
            if patch.content is not None:
                _lineage.unindex(self.conn, memory_id)
                self._index(memory_id, str(sets["content"]), old.speaker, blob)
        return self.memory(scope, memory_id)

    def touch(self, scope: Scope, ids: Iterable[int], at: str) -> None:
        wanted = [i for i in ids if _lineage.storable_id(i)]
        if not wanted:
            return
        where, params = scope_sql(scope, "memories")
        # "+profile": the ids find the rows; left to itself the planner walks the
        # profile's index instead (every row of it: ~20 ms per turn at 100k).
        where = where.replace("memories.profile", "+memories.profile", 1)
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE memories SET use_count = use_count + 1, last_used_at = ? "
                f"WHERE id IN ({marks(len(wanted))}) AND {where}",
                [at, *wanted, *params],
            )

    def memory(self, scope: Scope, memory_id: int) -> Memory:
        found = self.memories(scope, [memory_id])
        if not found:
            raise NotFoundError(_NOT_FOUND.format(memory_id))
        return found[0]

    def memories(self, scope: Scope, ids: Iterable[int]) -> list[Memory]:
        wanted = [i for i in ids if _lineage.storable_id(i)]
        where, params = scope_sql(scope)
        # json_each first: a walk of the primary key, not of the scope's index.
        rows = self.conn.execute(
            f"SELECT {_M_COLUMNS} FROM json_each(?) j CROSS JOIN memories m ON m.id = j.value "
            f"WHERE {where}",
            [json.dumps(wanted), *params],
        ).fetchall()
        found = {m.id: m for m in map(memory_from_row, rows)}
        return [found[i] for i in dict.fromkeys(wanted) if i in found]

    def list_memories(
        self, scope: Scope, filters: MemoryFilter, *, limit: int | None = None
    ) -> list[Memory]:
        where, params = filter_sql(scope, filters)
        sql = f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} ORDER BY m.id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [memory_from_row(r) for r in self.conn.execute(sql, params).fetchall()]

    def counts(self, scope: Scope) -> Counts:
        where, params = scope_sql(scope)
        kinds = {
            str(k): (int(a), int(t) - int(a))
            for k, t, a in self.conn.execute(
                "SELECT kind, count(*), sum(superseded_by IS NULL AND valid_until IS NULL) "
                f"FROM memories m WHERE {where} GROUP BY kind ORDER BY kind",
                params,
            ).fetchall()
        }
        one = "SELECT count(*) FROM {} WHERE profile = ?"
        messages = self.conn.execute(one.format("messages"), [scope.writes]).fetchone()[0]
        convs = self.conn.execute(one.format("conversations"), [scope.writes]).fetchone()[0]
        return Counts(kinds, int(messages), int(convs))

    def delete_memories(
        self, scope: Scope, ids: Iterable[int], *, reason: str, actor: str = "user"
    ) -> list[int]:
        deleted: list[int] = []
        with transaction(self.conn):
            for memory_id in ids:
                try:
                    mem = self._own_memory(scope, memory_id)
                except NotFoundError:
                    continue
                detail = {"kind": mem.kind, "source": mem.source, "reason": reason}
                _lineage.delete_row(self.conn, memory_id, detail=detail, actor=actor)
                deleted.append(memory_id)
        return deleted

    # ------------------------------------------------ lineage and forgetting
    def lineage(self, scope: Scope, message_ids: Iterable[int]) -> Lineage:
        return _lineage.lineage(self.conn, scope, message_ids)

    def forget(
        self,
        scope: Scope,
        ids: Sequence[int],
        *,
        with_source: bool = False,
        scrub: Scrub | None = None,
        at: str = "",
    ) -> ForgetResult:
        with transaction(self.conn):
            result = _lineage.forget(
                self.conn, scope, ids, with_source=with_source, scrub=scrub, at=at
            )
        if not self.conn.in_transaction:
            result.scrub_pending = not self.scrub(scope)
        return result

    def scrub(self, scope: Scope) -> bool:
        return _lineage.scrub(self.conn)

    # ------------------------------------------------------ for the store
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
        total = _reindex(self.conn, embedder, dim, embed, progress=progress, batch=batch)
        self.dim = dim
        return total

    def delete_row(self, memory_id: int, *, detail: dict[str, Any], actor: str = "user") -> None:
        """Not of the protocol: ``MemoryStore.delete_row`` for the verbs that
        still hold the transaction and check the namespace themselves."""
        _lineage.delete_row(self.conn, memory_id, detail=detail, actor=actor)


def _conforms(backend: SQLiteBackend) -> StorageBackend:
    """mypy checks here that the class implements the whole protocol."""
    return backend
