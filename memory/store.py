"""MemoryStore: the one SQLite file and every write to it.

Each memory lives in three places that must agree: the ``memories`` row, its
FTS5 entry (same rowid) and its vectors (``memory_vectors`` floats for exact
scoring, ``memories_vec`` bits for a fast first pass). All three are written
and deleted together inside one transaction, and every change leaves a row in
``memory_events`` (the audit trail).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from memory import timeutil
from memory.config import DEFAULT_PROFILE, SYSTEM_PROFILE
from memory.errors import (
    DatabaseBusyError,
    DatabaseError,
    EmbedderMismatchError,
    IndexIncompleteError,
    NotFoundError,
    UsageError,
)
from memory.models.embed import Embedder, get_embedder, pack
from memory.privacy.secrets_gate import POLICIES, apply, apply_record
from memory.records import KINDS, MEMORY_COLUMNS, Event, Memory, Message, memory_from_row
from memory.storage.protocol import StorageBackend
from memory.storage.scope import Scope
from memory.storage.sqlite import keyword_stats
from memory.storage.sqlite.db import Connection, connect, transaction, translate
from memory.storage.sqlite.schema import ensure_schema, schema_version

# (done, total) after each batch of a long operation (reindex).
Progress = Callable[[int, int], None]


def storable_id(value: int) -> bool:
    """Whether ``value`` can be a row id at all (SQLite's are 64-bit): a larger
    one is simply not found, never an overflow."""
    return 0 < value < 2**63


class MemoryStore:
    """The engine's storage API. Open with :meth:`open`; close when done."""

    def __init__(
        self,
        conn: Connection,
        path: Path,
        embedder: Embedder,
        profile: str,
        *,
        secrets: str = "redact",
    ) -> None:
        self.conn = conn
        self.path = path
        self.embedder = embedder
        self.profile = profile
        self.secrets = secrets
        # search's recency half-life (config ``recency_half_life_days``; ranking's default)
        self.half_life_days: float = 30.0
        self._sqlite_utils_db: Any = None
        self._backend: StorageBackend | None = None

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        embedder: str | None = None,
        profile: str | None = None,
        allow_embedder_change: bool = False,
        secrets: str = "redact",
    ) -> MemoryStore:
        """Open (creating) the database and check its embedder.

        ``embedder`` None means "whatever the database was built with" (the
        default embedder for a new file); naming a different one is an error
        that points at ``mem reindex`` unless ``allow_embedder_change``.
        """
        from memory.config import db_path, validate_profile

        chosen_profile = validate_profile(profile or DEFAULT_PROFILE)
        if secrets not in POLICIES:
            raise UsageError(f"Unknown secrets policy {secrets!r}: use redact, refuse or allow.")
        target = db_path(path)
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
            if embedder is None:
                chosen = get_embedder(stored_name, dim=stored_dim)
            else:
                chosen = get_embedder(embedder)
                if stored_name and chosen.name != stored_name and not allow_embedder_change:
                    raise EmbedderMismatchError(
                        f"This database's vectors were built with {stored_name}, not "
                        f"{chosen.name}: run `mem reindex --embedder {embedder}` to rebuild them, "
                        "or drop the embedder setting."
                    )
            store = cls(conn, target, chosen, chosen_profile, secrets=secrets)
            if stored_name is not None and not allow_embedder_change:
                store._check_vectors()
            if stored_name is not None:
                from memory.storage.sqlite.scrub import finish_pending_scrub

                finish_pending_scrub(conn)
            from memory.privacy.history import drop_plaintext

            drop_plaintext(target, conn)  # an encrypted database keeps no plaintext history
            if stored_name is None and not store._create_vector_tables(only_if_missing=True):
                # Another process set up this new file between our look and our lock:
                # open again, so its embedder is checked like any other.
                conn.close()
                return cls.open(
                    path,
                    embedder=embedder,
                    profile=profile,
                    allow_embedder_change=allow_embedder_change,
                    secrets=secrets,
                )
        except BaseException as err:
            conn.close()
            if isinstance(err, DatabaseError | UsageError):
                raise
            driver = type(err).__module__.startswith(("sqlean", "sqlcipher3"))
            if isinstance(err, Exception) and driver:
                raise translate(err, target) from None
            raise
        return store

    def _check_vectors(self) -> None:
        """Every memory has its vector: counts compared (an index scan of small
        rows, not of the vectors), so a half-built index cannot pass unnoticed."""
        # One statement, so that both counts come from the same snapshot.
        sql = "SELECT (SELECT count(*) FROM memories), (SELECT count(*) FROM {})"
        try:  # sqlite-vec's table of ids: small rows, cheap to count
            row = self.conn.execute(sql.format("memories_vec_rowids")).fetchone()
        except Exception:  # another sqlite-vec layout: count the float vectors
            row = self.conn.execute(sql.format("memory_vectors")).fetchone()
        memories, vectors = int(row[0]), int(row[1])
        if memories > vectors:
            raise IndexIncompleteError(
                f"{memories - vectors} of the {memories} memories in {self.path} have no "
                "vector (an interrupted reindex?): run `mem reindex` to rebuild them."
            )
        if memories < vectors:
            raise IndexIncompleteError(
                f"The vector index of {self.path} holds vectors of deleted memories: run "
                "`mem reindex` to rebuild it."
            )

    def _create_vector_tables(self, *, only_if_missing: bool = False) -> bool:
        """(Re)create the vector tables for this embedder; with ``only_if_missing``
        do nothing (False) when another process created them first."""
        dim = self.embedder.dim
        with transaction(self.conn):
            if only_if_missing and self.meta("embedder") is not None:
                return False
            self.conn.execute("DROP TABLE IF EXISTS memories_vec")
            self.conn.execute("DROP TABLE IF EXISTS memory_vectors")
            self.conn.execute(
                "CREATE TABLE memory_vectors (id INTEGER PRIMARY KEY "
                "REFERENCES memories(id) ON DELETE CASCADE, vector BLOB NOT NULL)"
            )
            self.conn.execute(
                f"CREATE VIRTUAL TABLE memories_vec USING vec0("
                f"id INTEGER PRIMARY KEY, embedding bit[{dim}])"
            )
            self._set_meta("embedder", self.embedder.name)
            self._set_meta("embedder_dim", str(dim))
        return True

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # closing twice is harmless
            pass

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> Any:
        """The same connection as a ``sqlite_utils.Database`` (imported lazily)."""
        if self._sqlite_utils_db is None:
            from sqlite_utils import Database

            self._sqlite_utils_db = Database(self.conn)
        return self._sqlite_utils_db

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    @property
    def scope(self) -> Scope:
        """What every storage call of this store may see: the profile and ``system``."""
        return Scope(self.profile, self.readable_profiles()[1:])

    @property
    def backend(self) -> StorageBackend:
        """The storage seam over this store's connection (one connection, one transaction)."""
        if self._backend is None:
            from memory.storage.sqlite.backend import SQLiteBackend

            self._backend = SQLiteBackend(self.conn, self.path)
        return self._backend

    def readable_profiles(self) -> tuple[str, ...]:
        """A profile reads its own rows and the shared ``system`` namespace."""
        if self.profile == SYSTEM_PROFILE:
            return (SYSTEM_PROFILE,)
        return (self.profile, SYSTEM_PROFILE)

    # ------------------------------------------------------------------ audit
    def _event(
        self,
        memory_id: int | None,
        event: str,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        detail: dict[str, Any] | None = None,
        actor: str = "user",
    ) -> None:
        if self.secrets != "allow":  # events are stored strings too; never refused here
            gated = apply_record({"b": before, "a": after, "d": detail}, "redact").record
            before, after, detail = gated["b"], gated["a"], gated["d"]
        self.conn.execute(
            "INSERT INTO memory_events(memory_id, event, at, actor, before, after, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                memory_id,
                event,
                timeutil.now_iso(),
                actor,
                None if before is None else json.dumps(before),
                None if after is None else json.dumps(after),
                json.dumps(detail or {}),
            ],
        )

    def history(self, memory_id: int) -> list[Event]:
        """Audit events of a memory (a forgotten one's events carry no text).

        A forgotten memory is known by the profile its ``forget`` event names;
        one forgotten before events named it is no one's to show."""
        if not storable_id(memory_id):
            raise NotFoundError(f"No memory with id {memory_id}: see `mem list` for ids.")
        exists = self.conn.execute("SELECT profile FROM memories WHERE id = ?", [memory_id])
        row = exists.fetchone()
        if row is None:
            row = self.conn.execute(
                "SELECT json_extract(detail, '$.profile') FROM memory_events "
                "WHERE memory_id = ? AND event = 'forget'",
                [memory_id],
            ).fetchone()
        if row is None or row[0] not in self.readable_profiles():
            raise NotFoundError(f"No memory with id {memory_id}: see `mem list` for ids.")
        rows = self.conn.execute(
            "SELECT id, memory_id, event, at, actor, before, after, detail FROM memory_events "
            "WHERE memory_id = ? ORDER BY id",
            [memory_id],
        ).fetchall()
        return [
            Event(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                json.loads(r[5]) if r[5] else None,
                json.loads(r[6]) if r[6] else None,
                json.loads(r[7] or "{}"),
            )
            for r in rows
        ]

    def last_change(self) -> Event | None:
        """The newest undoable event of this profile (for ``/undo``)."""
        row = self.conn.execute(
            "SELECT e.id FROM memory_events e JOIN memories m ON m.id = e.memory_id "
            "WHERE m.profile = ? AND e.event IN ('add', 'update', 'supersede') "
            "AND e.actor != 'undo' "
            "AND json_extract(e.detail, '$.undone') IS NULL ORDER BY e.id DESC LIMIT 1",
            [self.profile],
        ).fetchone()
        if row is None:
            return None
        return self.event(int(row[0]))

    def event(self, event_id: int) -> Event | None:
        row = self.conn.execute(
            "SELECT memory_id FROM memory_events WHERE id = ?", [event_id]
        ).fetchone()
        if row is None:
            return None
        return next((e for e in self.history(row[0]) if e.id == event_id), None)

    # ---------------------------------------------------------------- writing
    def _index(
        self, memory_id: int, content: str, speaker: str | None, vector: list[float]
    ) -> None:
        if self.meta("embedder") != self.embedder.name:  # a reindex finished meanwhile
            raise EmbedderMismatchError(
                f"{self.path} was reindexed with {self.meta('embedder')} while this command "
                "ran: run it again."
            )
        self.conn.execute(
            "INSERT INTO memories_fts(rowid, content, speaker) VALUES (?, ?, ?)",
            [memory_id, content, speaker or ""],
        )
        keyword_stats.count_row(self.conn, memory_id, 1)
        blob = pack(vector)
        self.conn.execute("INSERT INTO memory_vectors(id, vector) VALUES (?, ?)", [memory_id, blob])
        self.conn.execute(
            "INSERT INTO memories_vec(id, embedding) VALUES (?, vec_quantize_binary(vec_f32(?)))",
            [memory_id, blob],
        )

    def delete_row(self, memory_id: int, *, detail: dict[str, Any], actor: str = "user") -> None:
        """The one deletion of a memory: row, FTS entry, vectors; earlier audit
        events lose their text and a ``forget`` event records ``detail``.
        The caller holds the transaction and checks the profile."""
        row = self.conn.execute("SELECT profile FROM memories WHERE id = ?", [memory_id])
        detail = {**detail, "profile": (row.fetchone() or [None])[0]}
        self._unindex(memory_id)
        self.conn.execute("DELETE FROM memories WHERE id = ?", [memory_id])
        self.conn.execute(
            "UPDATE memory_events SET before = NULL, after = NULL WHERE memory_id = ?",
            [memory_id],
        )
        self._event(memory_id, "forget", detail=detail, actor=actor)

    def _next_id(self) -> int:
        """Past every id ever given out: a later `mem forget N` must not hit a
        newer memory, nor the audit trail of N mix two. The floor is kept by
        the ``memories_id_floor`` trigger (schema m003) on every deletion; the
        caller holds the write transaction, so two processes cannot race."""
        row = self.conn.execute(
            "SELECT max((SELECT coalesce(max(CAST(value AS INTEGER)), 0) FROM meta "
            "WHERE key = 'memory_id_floor'), (SELECT coalesce(max(id), 0) FROM memories))"
        ).fetchone()
        return int(row[0]) + 1

    def _unindex(self, memory_id: int) -> None:
        keyword_stats.count_row(self.conn, memory_id, -1)
        self.conn.execute("DELETE FROM memories_fts WHERE rowid = ?", [memory_id])
        self.conn.execute("DELETE FROM memories_vec WHERE id = ?", [memory_id])
        self.conn.execute("DELETE FROM memory_vectors WHERE id = ?", [memory_id])

    def add_memory(
        self,
        content: str,
        *,
        kind: str = "fact",
        source: str = "user",
        importance: float = 0.5,
        confidence: float = 1.0,
        profile: str | None = None,
        source_message_id: int | None = None,
        conversation: str | None = None,
        external_id: str | None = None,
        speaker: str | None = None,
        created_at: str | None = None,
        metadata: dict[str, Any] | None = None,
        vector: list[float] | None = None,
        actor: str = "user",
        audit: bool = True,
        detail: dict[str, Any] | None = None,
        stored_vector: list[float] | None = None,
    ) -> int:
        """Insert one memory with its FTS and vector entries; returns its id.

        ``vector`` is the embedding of ``content`` (dropped if the secret gate
        changes the text); ``stored_vector`` that of :meth:`stored_text`, kept
        either way. A caller inside a transaction passes one of them, so that
        no embedding call (an HTTP request for a provider) holds the write lock.
        """
        content = content.strip()
        if not content:
            raise UsageError("Nothing to remember: give some text.")
        if kind not in KINDS:
            raise UsageError(f"Unknown kind {kind!r}: use one of {', '.join(KINDS)}.")
        if kind != "message":  # the raw log is governed by retention, not the gate
            record = {"content": content, "source": source, "speaker": speaker}
            gated = apply_record({**record, "metadata": metadata or {}}, self.secrets)
            if gated.findings:
                content, source = gated.record["content"], gated.record["source"]
                speaker = gated.record["speaker"]
                said = (metadata or {}).get("redacted")
                earlier = [str(x) for x in said] if isinstance(said, list) else []
                found = earlier + [f for f in gated.findings if f not in earlier]
                metadata = {**gated.record["metadata"], "redacted": found}
                vector = None
        for label, value in (("importance", importance), ("confidence", confidence)):
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"Invalid {label} {value}: use a number from 0 to 1.")
        stamp = created_at or timeutil.now_iso()
        now = timeutil.now_iso()
        vec = stored_vector if stored_vector is not None else vector
        if vec is None:
            vec = self.embedder.embed([content])[0]
        with transaction(self.conn):
            cur = self.conn.execute(
                "INSERT INTO memories(id, profile, kind, content, source, source_message_id, "
                "conversation_id, external_id, speaker, importance, confidence, created_at, "
                "updated_at, valid_from, metadata) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    self._next_id(),
                    profile or self.profile,
                    kind,
                    content,
                    source,
                    source_message_id,
                    conversation,
                    external_id,
                    speaker,
                    importance,
                    confidence,
                    stamp,
                    now,
                    stamp,
                    json.dumps(metadata or {}),
                ],
            )
            memory_id = int(cur.lastrowid)
            self._index(memory_id, content, speaker, vec)
            if audit:
                self._event(
                    memory_id,
                    "add",
                    after={"content": content, "kind": kind},
                    detail={"source": source, **(detail or {})},
                    actor=actor,
                )
        return memory_id

    def stored_text(self, content: str, kind: str = "fact") -> str:
        """The text :meth:`add_memory` would store (stripped, through the secret
        gate), so that callers can embed it before taking the write lock.
        Raises SecretRefusedError under ``secrets = "refuse"``."""
        content = content.strip()
        return content if kind == "message" else apply(content, self.secrets).text

    def remember(
        self,
        content: str,
        *,
        kind: str = "fact",
        importance: float = 0.5,
        tags: Sequence[str] = (),
        source: str = "user",
        confidence: float = 1.0,
        source_message_id: int | None = None,
        conversation: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Memory:
        """Explicit formation (``mem remember``): a memory, not a message."""
        if kind not in ("fact", "instruction"):
            raise UsageError(f"Unknown kind {kind!r} for remember: use fact or instruction.")
        meta = dict(metadata or {})
        if tags:
            meta["tags"] = sorted({t.strip() for t in tags if t.strip()})
        memory_id = self.add_memory(
            content,
            kind=kind,
            source=source,
            importance=importance,
            confidence=confidence,
            source_message_id=source_message_id,
            conversation=conversation,
            metadata=meta,
        )
        return self.get(memory_id)

    def update_memory(
        self,
        memory_id: int,
        content: str,
        *,
        actor: str = "user",
        detail: dict[str, Any] | None = None,
        importance: float | None = None,
        stored_vector: list[float] | None = None,
    ) -> Memory:
        """Replace a memory's text in place (consolidation's *update*);
        ``stored_vector`` as in :meth:`add_memory`."""
        old = self.get(memory_id)
        content = apply(content, self.secrets).text
        vec = stored_vector if stored_vector is not None else self.embedder.embed([content])[0]
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE memories SET content = ?, updated_at = ?, importance = ? WHERE id = ?",
                [
                    content,
                    timeutil.now_iso(),
                    old.importance if importance is None else importance,
                    memory_id,
                ],
            )
            self._unindex(memory_id)
            self._index(memory_id, content, old.speaker, vec)
            self._event(
                memory_id,
                "update",
                before={"content": old.content},
                after={"content": content},
                detail=detail,
                actor=actor,
            )
        return self.get(memory_id)

    def supersede(
        self,
        old_id: int,
        new_id: int,
        *,
        actor: str = "user",
        reason: str = "",
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Mark ``old_id`` replaced by ``new_id``: kept, but no longer current."""
        self.get(old_id)  # both in scope, or NotFoundError
        self.get(new_id)
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE memories SET superseded_by = ?, valid_until = ?, updated_at = ? "
                "WHERE id = ?",
                [new_id, timeutil.now_iso(), timeutil.now_iso(), old_id],
            )
            self._event(
                old_id,
                "supersede",
                detail={"superseded_by": new_id, "reason": reason, **(detail or {})},
                actor=actor,
            )

    def touch(self, ids: Iterable[int]) -> None:
        """Record that memories were used in a prompt (use_count, last_used_at)."""
        ids = [i for i in ids if storable_id(i)]
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        scope = ",".join("?" * len(self.readable_profiles()))
        with transaction(self.conn):
            self.conn.execute(
                f"UPDATE memories SET use_count = use_count + 1, last_used_at = ? "
                f"WHERE id IN ({marks}) AND profile IN ({scope})",
                [timeutil.now_iso(), *ids, *self.readable_profiles()],
            )

    # --------------------------------------------------------------- reading
    def get(self, memory_id: int) -> Memory:
        if not storable_id(memory_id):
            raise NotFoundError(f"No memory with id {memory_id}: see `mem list` for ids.")
        marks = ",".join("?" * len(self.readable_profiles()))
        row = self.conn.execute(
            f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ? AND profile IN ({marks})",
            [memory_id, *self.readable_profiles()],
        ).fetchone()
        if row is None:
            raise NotFoundError(f"No memory with id {memory_id}: see `mem list` for ids.")
        return memory_from_row(row)

    def list_memories(
        self,
        *,
        kind: str | None = None,
        include_inactive: bool = False,
        limit: int | None = None,
        conversation: str | None = None,
    ) -> list[Memory]:
        where = [f"profile IN ({','.join('?' * len(self.readable_profiles()))})"]
        params: list[Any] = list(self.readable_profiles())
        if kind:
            if kind not in KINDS:
                raise UsageError(f"Unknown kind {kind!r}: use one of {', '.join(KINDS)}.")
            where.append("kind = ?")
            params.append(kind)
        if conversation:
            where.append("conversation_id = ?")
            params.append(conversation)
        if not include_inactive:
            where.append(
                "superseded_by IS NULL AND valid_until IS NULL "
                "AND (expires_at IS NULL OR expires_at > ?)"
            )
            params.append(timeutil.now_iso())
        sql = f"SELECT {MEMORY_COLUMNS} FROM memories WHERE {' AND '.join(where)} ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [memory_from_row(r) for r in self.conn.execute(sql, params).fetchall()]

    def stats(self) -> dict[str, Any]:
        marks = ",".join("?" * len(self.readable_profiles()))
        kinds = {
            k: {"active": a, "inactive": t - a}
            for k, t, a in self.conn.execute(
                "SELECT kind, count(*), sum(superseded_by IS NULL AND valid_until IS NULL) "
                f"FROM memories WHERE profile IN ({marks}) GROUP BY kind ORDER BY kind",
                list(self.readable_profiles()),
            ).fetchall()
        }
        messages = self.conn.execute(
            "SELECT count(*) FROM messages WHERE profile = ?", [self.profile]
        ).fetchone()[0]
        conversations = self.conn.execute(
            "SELECT count(*) FROM conversations WHERE profile = ?", [self.profile]
        ).fetchone()[0]
        size = sum(
            os.path.getsize(p)
            for p in (str(self.path), f"{self.path}-wal", f"{self.path}-shm")
            if os.path.exists(p)
        )
        return {
            "path": str(self.path),
            "profile": self.profile,
            "kinds": kinds,
            "memories": sum(v["active"] + v["inactive"] for v in kinds.values()),
            "messages": messages,
            "conversations": conversations,
            "size_bytes": size,
            "embedder": self.meta("embedder"),
            "embedder_dim": int(self.meta("embedder_dim") or 0),
            "schema_version": schema_version(),
        }

    # ---------------------------------------------------------- conversations
    def new_conversation(
        self,
        title: str | None = None,
        *,
        conversation_id: str | None = None,
        created_at: str | None = None,
    ) -> str:
        cid = conversation_id or f"c{secrets.token_hex(4)}"
        if title:
            title = apply(title, self.secrets).text
        stamp = created_at or timeutil.now_iso()
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO conversations(id, profile, title, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                [cid, self.profile, title, stamp, stamp],
            )
        if conversation_id and not self.conversation_exists(cid):
            # Another profile's: never join it (see conversation_id_for).
            raise UsageError(f"Conversation id {cid!r} is taken: choose another id.")
        return cid

    def conversation_id_for(self, conversation_id: str) -> str:
        """The id under which this profile keeps a file's conversation
        ``conversation_id``: that id, unless another profile has it, then
        ``ID@PROFILE`` (``~2``, ``~3`` … after that). Conversation ids are one
        namespace in the file; an import must neither join another profile's
        conversation nor be refused in words that name its owner."""
        candidate, n = conversation_id, 1
        while True:
            row = self.conn.execute(
                "SELECT profile FROM conversations WHERE id = ?", [candidate]
            ).fetchone()
            if row is None or row[0] == self.profile:
                return candidate
            n += 1
            candidate = f"{conversation_id}@{self.profile}" + (f"~{n - 1}" if n > 2 else "")

    def import_key_for(self, key: str) -> str:
        """The key under which this profile keeps a message with import key
        ``key``: like :meth:`conversation_id_for`, another profile's key is
        never matched (no "skipped" for its messages, no link to them)."""
        candidate, n = key, 1
        while True:
            row = self.conn.execute(
                "SELECT profile FROM messages WHERE import_key = ?", [candidate]
            ).fetchone()
            if row is None or row[0] == self.profile:
                return candidate
            n += 1
            candidate = f"{key}\x1e{self.profile}" + (f"~{n - 1}" if n > 2 else "")

    def message_id_for(self, key: str) -> int | None:
        """This profile's message with import key ``key`` (an export's
        ``source_message``), or None."""
        row = self.conn.execute(
            "SELECT id FROM messages WHERE import_key = ? AND profile = ?",
            [self.import_key_for(key), self.profile],
        ).fetchone()
        return None if row is None else int(row[0])

    def conversation_exists(self, conversation_id: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM conversations WHERE id = ? AND profile = ?",
            [conversation_id, self.profile],
        ).fetchone()
        return row is not None

    def require_conversation(self, conversation_id: str) -> None:
        if not self.conversation_exists(conversation_id):
            raise NotFoundError(
                f"No conversation {conversation_id!r} in profile {self.profile!r}: "
                "see `mem conversations` for ids."
            )

    def last_conversation(self) -> str | None:
        row = self.conn.execute(
            "SELECT id FROM conversations WHERE profile = ? ORDER BY updated_at DESC, rowid DESC "
            "LIMIT 1",
            [self.profile],
        ).fetchone()
        return None if row is None else str(row[0])

    def conversations(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT c.id, c.title, c.created_at, c.updated_at, "
            "(SELECT count(*) FROM messages m WHERE m.conversation_id = c.id "
            "AND m.profile = c.profile) "
            "FROM conversations c WHERE c.profile = ? ORDER BY c.updated_at DESC LIMIT ?",
            [self.profile, limit],
        ).fetchall()
        keys = ("id", "title", "created_at", "updated_at", "messages")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def summary(self, conversation_id: str) -> tuple[str | None, int | None]:
        row = self.conn.execute(
            "SELECT summary, summary_upto FROM conversations WHERE id = ? AND profile = ?",
            [conversation_id, self.profile],
        ).fetchone()
        return (None, None) if row is None else (row[0], row[1])

    def set_summary(self, conversation_id: str, summary: str, upto: int) -> None:
        if self.secrets != "allow":  # a summary is derived, so redacted, never refused
            summary = apply(summary, "redact").text
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE conversations SET summary = ?, summary_upto = ? "
                "WHERE id = ? AND profile = ?",
                [summary, upto, conversation_id, self.profile],
            )

    def log_message(
        self,
        conversation_id: str,
        role: str,
        content: str,
        *,
        speaker: str | None = None,
        created_at: str | None = None,
        external_id: str | None = None,
        import_key: str | None = None,
        index: bool = True,
        vector: list[float] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        """Append a message to the episodic log and index it for search."""
        stamp = created_at or timeutil.now_iso()
        # Every message gets a stable key so an export re-imported here adds nothing.
        import_key = import_key or f"{conversation_id}\x1f@{secrets.token_hex(8)}"
        if index and content.strip() and vector is None:
            vector = self.embedder.embed([content.strip()])[0]  # before the write lock
        with transaction(self.conn):
            # Past every id ever given out: the floor is kept by a trigger (m005).
            next_id = self.conn.execute(
                "SELECT max((SELECT coalesce(max(CAST(value AS INTEGER)), 0) FROM meta "
                "WHERE key = 'message_id_floor'), (SELECT coalesce(max(id), 0) FROM messages))"
            ).fetchone()[0]
            cur = self.conn.execute(
                "INSERT INTO messages(id, conversation_id, profile, role, speaker, content, "
                "created_at, external_id, import_key, metadata) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    int(next_id) + 1,
                    conversation_id,
                    self.profile,
                    role,
                    speaker,
                    content,
                    stamp,
                    external_id,
                    import_key,
                    json.dumps(metadata or {}),
                ],
            )
            message_id = int(cur.lastrowid)
            self.conn.execute(
                "UPDATE conversations SET updated_at = max(updated_at, ?) WHERE id = ?",
                [timeutil.now_iso() if created_at is None else stamp, conversation_id],
            )
            if index and content.strip():
                self.add_memory(
                    content,
                    kind="message",
                    source=f"message:{role}",
                    source_message_id=message_id,
                    conversation=conversation_id,
                    external_id=external_id,
                    speaker=speaker or role,
                    created_at=stamp,
                    vector=vector,
                    audit=False,
                )
        return message_id

    def messages(
        self, conversation_id: str, *, after_id: int | None = None, limit: int | None = None
    ) -> list[Message]:
        """Messages of a conversation in order (the last ``limit`` when given)."""
        sql = (
            "SELECT id, conversation_id, role, content, created_at, speaker, external_id, profile "
            "FROM messages WHERE conversation_id = ? AND profile = ? AND id > ? "
            "ORDER BY id DESC"
        )
        params: list[Any] = [conversation_id, self.profile, after_id or 0]
        if limit:
            sql += f" LIMIT {int(limit)}"
        rows = self.conn.execute(sql, params).fetchall()
        return [Message(*r) for r in reversed(rows)]

    def message(self, message_id: int) -> Message | None:
        if not storable_id(message_id):
            return None
        row = self.conn.execute(
            "SELECT id, conversation_id, role, content, created_at, speaker, external_id, profile "
            "FROM messages WHERE id = ? AND profile = ?",
            [message_id, self.profile],
        ).fetchone()
        return None if row is None else Message(*row)

    def delete_memories(self, ids: Iterable[int], *, reason: str, actor: str = "user") -> int:
        """Delete memories of the readable profiles for real (row, FTS entry,
        vectors) in one transaction, audited like ``forget``: earlier events
        lose their text and a ``forget`` event records ``reason``. Returns how
        many were deleted; ids that do not exist are passed over."""
        deleted = 0
        marks = ",".join("?" * len(self.readable_profiles()))
        with transaction(self.conn):
            for memory_id in ids:
                row = (
                    storable_id(memory_id)
                    and self.conn.execute(
                        f"SELECT kind, source FROM memories WHERE id = ? AND profile IN ({marks})",
                        [memory_id, *self.readable_profiles()],
                    ).fetchone()
                )
                if not row:
                    continue
                self.delete_row(
                    memory_id,
                    detail={"kind": row[0], "source": row[1], "reason": reason},
                    actor=actor,
                )
                deleted += 1
        return deleted

    def reindex(self, *, progress: Progress | None = None, batch: int = 256) -> int:
        """Rebuild every vector with the current embedder (after a change).

        The new vectors are built beside the old ones, in ``memory_vectors_new``:
        a batch at a time, embedded with no lock held, each batch written in a
        short transaction. One last transaction swaps them in and records the
        new embedder. Until then the old vectors and embedder stay in force, so
        a reindex that is interrupted changes nothing, and the next one for the
        same embedder resumes where it stopped.
        """
        target = f"{self.embedder.name}:{self.embedder.dim}"
        with transaction(self.conn):
            if self.meta("reindex_to") != target:
                self.conn.execute("DROP TABLE IF EXISTS memory_vectors_new")
                self._set_meta("reindex_to", target)
                self._set_meta("reindex_since", str(self._last_event()))
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS memory_vectors_new (id INTEGER PRIMARY KEY "
                "REFERENCES memories(id) ON DELETE CASCADE, vector BLOB NOT NULL)"
            )
        since = int(self.meta("reindex_since") or 0)
        total = int(self.conn.execute("SELECT count(*) FROM memories").fetchone()[0])
        done = int(self.conn.execute("SELECT count(*) FROM memory_vectors_new").fetchone()[0])
        # A memory whose text changed (an 'update' event) after its new vector was
        # made is embedded again; the audit trail says which, without timestamps.
        changed_sql = (
            "SELECT DISTINCT memory_id FROM memory_events WHERE id > ? AND event = 'update' "
            "AND memory_id IN (SELECT id FROM memory_vectors_new)"
        )
        for _ in range(5):
            stale = [int(r[0]) for r in self.conn.execute(changed_sql, [since]).fetchall()]
            since = self._last_event()
            done = self._fill_new_vectors(stale, done, total, batch, progress)
            with transaction(self.conn):
                missing = self.conn.execute(
                    "SELECT count(*) FROM memories m LEFT JOIN memory_vectors_new v "
                    "ON v.id = m.id WHERE v.id IS NULL"
                ).fetchone()[0]
                changed = self.conn.execute(changed_sql + " LIMIT 1", [since]).fetchone()
                if not missing and changed is None:
                    self._swap_vectors()
                    return int(self.conn.execute("SELECT count(*) FROM memories").fetchone()[0])
            # Written meanwhile by another process: those are embedded next round.
        raise DatabaseBusyError(
            "Other processes kept changing memories during the reindex: stop them and run "
            "`mem reindex` again (it resumes where it stopped)."
        )

    def _last_event(self) -> int:
        return int(self.conn.execute("SELECT max(id) FROM memory_events").fetchone()[0] or 0)

    def _fill_new_vectors(
        self, stale: list[int], done: int, total: int, batch: int, progress: Progress | None
    ) -> int:
        """Embed (no lock held) and write the rows that have no new vector yet,
        and the ``stale`` ones again; returns how many are done."""
        last = 0
        while True:
            if stale:
                ids, stale = stale[:batch], stale[batch:]
                marks = ",".join("?" * len(ids))
                rows = self.conn.execute(
                    f"SELECT id, content FROM memories WHERE id IN ({marks})", ids
                ).fetchall()
            else:
                rows = self.conn.execute(
                    "SELECT m.id, m.content FROM memories m LEFT JOIN memory_vectors_new v "
                    "ON v.id = m.id WHERE m.id > ? AND v.id IS NULL ORDER BY m.id LIMIT ?",
                    [last, batch],
                ).fetchall()
                if not rows:
                    return done
                last = int(rows[-1][0])
                done += len(rows)
            vectors = self.embedder.embed([str(t) for _, t in rows])
            with transaction(self.conn):
                self.conn.executemany(
                    "INSERT OR REPLACE INTO memory_vectors_new(id, vector) "
                    "SELECT ?, ? WHERE EXISTS (SELECT 1 FROM memories WHERE id = ?)",
                    [(mid, pack(vec), mid) for (mid, _), vec in zip(rows, vectors, strict=True)],
                )
            if progress:
                progress(min(done, total), total)

    def _swap_vectors(self) -> None:
        """Inside the caller's transaction: the new vectors become the index."""
        dim = self.embedder.dim
        self.conn.execute("DROP TABLE IF EXISTS memories_vec")
        self.conn.execute("DROP TABLE IF EXISTS memory_vectors")
        self.conn.execute("ALTER TABLE memory_vectors_new RENAME TO memory_vectors")
        self.conn.execute(
            f"CREATE VIRTUAL TABLE memories_vec USING vec0(id INTEGER PRIMARY KEY, "
            f"embedding bit[{dim}])"
        )
        self.conn.execute(
            "INSERT INTO memories_vec(id, embedding) "
            "SELECT id, vec_quantize_binary(vec_f32(vector)) FROM memory_vectors ORDER BY id"
        )
        self._set_meta("embedder", self.embedder.name)
        self._set_meta("embedder_dim", str(dim))
        self.conn.execute("DELETE FROM meta WHERE key IN ('reindex_to', 'reindex_since')")
