"""The schema, as ``sqlite_utils.Migrations``.

Never edit a released migration: add a new one. ``ensure_schema`` first asks
``_sqlite_migrations`` with one plain query, so a process whose database is
current never imports sqlite-utils (about 130 ms of start-up) on its read path.
"""

from __future__ import annotations

import re
from typing import Any

from memory.errors import CorruptDatabaseError, SchemaTooNewError
from memory.storage.sqlite.db import Connection, transaction

MIGRATION_SET = "mem"


def _migrations() -> Any:
    from sqlite_utils.migrations import Migrations

    migrations = Migrations(MIGRATION_SET)

    @migrations(name="m001_initial")
    def m001_initial(db: Any) -> None:
        db.execute(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)
            """
        )
        db.execute(
            """
            CREATE TABLE conversations (
                id TEXT PRIMARY KEY,
                profile TEXT NOT NULL DEFAULT 'default',
                title TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                summary TEXT,
                summary_upto INTEGER,
                metadata TEXT NOT NULL DEFAULT '{}'
            )
            """
        )
        db.execute("CREATE INDEX conversations_profile ON conversations(profile, updated_at)")
        db.execute(
            """
            CREATE TABLE messages (
                id INTEGER PRIMARY KEY,
                conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
                profile TEXT NOT NULL DEFAULT 'default',
                role TEXT NOT NULL,
                speaker TEXT,
                content TEXT NOT NULL,
                created_at TEXT NOT NULL,
                external_id TEXT,
                import_key TEXT UNIQUE,
                metadata TEXT NOT NULL DEFAULT '{}'
            )
            """
        )
        db.execute("CREATE INDEX messages_conversation ON messages(conversation_id, id)")
        db.execute(
            """
            CREATE TABLE memories (
                id INTEGER PRIMARY KEY,
                profile TEXT NOT NULL DEFAULT 'default',
                kind TEXT NOT NULL CHECK (kind IN
                    ('fact', 'instruction', 'message', 'episode', 'document', 'summary')),
                content TEXT NOT NULL,
                source TEXT NOT NULL,
                source_message_id INTEGER REFERENCES messages(id) ON DELETE SET NULL,
                conversation_id TEXT REFERENCES conversations(id) ON DELETE SET NULL,
                external_id TEXT,
                speaker TEXT,
                importance REAL NOT NULL DEFAULT 0.5,
                confidence REAL NOT NULL DEFAULT 1.0,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                last_used_at TEXT,
                use_count INTEGER NOT NULL DEFAULT 0,
                valid_from TEXT,
                valid_until TEXT,
                superseded_by INTEGER REFERENCES memories(id) ON DELETE SET NULL,
                expires_at TEXT,
                metadata TEXT NOT NULL DEFAULT '{}'
            )
            """
        )
        db.execute("CREATE INDEX memories_profile_kind ON memories(profile, kind, created_at)")
        db.execute("CREATE INDEX memories_conversation ON memories(conversation_id)")
        db.execute("CREATE INDEX memories_source ON memories(source_message_id)")
        db.execute("CREATE INDEX memories_created ON memories(created_at)")
        db.execute(
            """
            CREATE VIRTUAL TABLE memories_fts USING fts5(
                content, speaker,
                content='', contentless_delete=1,
                tokenize='porter unicode61 remove_diacritics 2'
            )
            """
        )
        db.execute("INSERT INTO memories_fts(memories_fts, rank) VALUES ('secure-delete', 1)")
        db.execute(
            """
            CREATE TABLE memory_events (
                id INTEGER PRIMARY KEY,
                memory_id INTEGER,
                event TEXT NOT NULL,
                at TEXT NOT NULL,
                actor TEXT NOT NULL DEFAULT 'user',
                before TEXT,
                after TEXT,
                detail TEXT NOT NULL DEFAULT '{}'
            )
            """
        )
        db.execute("CREATE INDEX memory_events_memory ON memory_events(memory_id, id)")

    @migrations(name="m002_documents")
    def m002_documents(db: Any) -> None:
        # Files added with `mem add`; their chunks are memories of kind
        # 'document' whose metadata names the file's path.
        db.execute(
            """
            CREATE TABLE documents (
                id INTEGER PRIMARY KEY,
                profile TEXT NOT NULL,
                path TEXT NOT NULL,
                format TEXT NOT NULL,
                hash TEXT NOT NULL,
                size INTEGER NOT NULL,
                mtime REAL NOT NULL,
                chunks INTEGER NOT NULL,
                chunker TEXT NOT NULL,
                added_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                UNIQUE (profile, path)
            )
            """
        )
        db.execute(
            "CREATE INDEX memories_document_path ON "
            "memories(profile, json_extract(metadata, '$.path')) WHERE kind = 'document'"
        )
        # Deleting a memory makes SQLite look for memories superseded by it (the
        # foreign key): without this index, a scan of the whole table per row
        # deleted (about 0.2 s each at 150k document chunks).
        db.execute(
            "CREATE INDEX memories_superseded ON memories(superseded_by) "
            "WHERE superseded_by IS NOT NULL"
        )

    @migrations(name="m003_id_floor")
    def m003_id_floor(db: Any) -> None:
        # Memory ids are never reused. The floor is the highest id ever given
        # out; a trigger keeps it on every deletion, whatever code deletes. An
        # older file's floor may be wrong (it was compared as TEXT), so it is
        # rebuilt from the rows and the audit trail, which names every id.
        db.execute(
            "INSERT INTO meta(key, value) SELECT 'memory_id_floor', max("
            "(SELECT coalesce(max(CAST(value AS INTEGER)), 0) FROM meta "
            "WHERE key = 'memory_id_floor'), "
            "(SELECT coalesce(max(id), 0) FROM memories), "
            "(SELECT coalesce(max(memory_id), 0) FROM memory_events)) "
            "WHERE true ON CONFLICT(key) DO UPDATE SET value = excluded.value"
        )
        db.execute(
            """
            CREATE TRIGGER IF NOT EXISTS memories_id_floor AFTER DELETE ON memories BEGIN
                INSERT INTO meta(key, value) VALUES ('memory_id_floor', old.id)
                ON CONFLICT(key) DO UPDATE SET value =
                    max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER));
            END
            """
        )

    @migrations(name="m004_fts_stats")
    def m004_fts_stats(db: Any) -> None:
        # Rows and tokens of the keyword index per profile, so that keyword
        # scores use the statistics of the profile searched, not of the file.
        from memory.storage.sqlite.keyword_stats import rebuild

        db.execute(
            "CREATE TABLE IF NOT EXISTS fts_stats (profile TEXT PRIMARY KEY, "
            "rows INTEGER NOT NULL, tokens INTEGER NOT NULL)"
        )
        rebuild(db.conn)

    @migrations(name="m005_message_id_floor")
    def m005_message_id_floor(db: Any) -> None:
        # Message ids are never reused either (a stale source reference would
        # name a new message). The floor starts from what the file remembers:
        # the rows, the index rows' links and the audit trail's details.
        db.execute(
            "INSERT INTO meta(key, value) SELECT 'message_id_floor', max("
            "(SELECT coalesce(max(CAST(value AS INTEGER)), 0) FROM meta "
            "WHERE key = 'message_id_floor'), "
            "(SELECT coalesce(max(id), 0) FROM messages), "
            "(SELECT coalesce(max(source_message_id), 0) FROM memories), "
            "(SELECT coalesce(max(CAST(json_extract(detail, '$.source_message') AS INTEGER)), 0) "
            "FROM memory_events WHERE json_valid(detail))) "
            "WHERE true ON CONFLICT(key) DO UPDATE SET value = excluded.value"
        )
        db.execute(
            """
            CREATE TRIGGER IF NOT EXISTS messages_id_floor AFTER DELETE ON messages BEGIN
                INSERT INTO meta(key, value) VALUES ('message_id_floor', old.id)
                ON CONFLICT(key) DO UPDATE SET value =
                    max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER));
            END
            """
        )

    @migrations(name="m006_example_kind")
    def m006_example_kind(db: Any) -> None:
        widen_kinds(db.conn, "example")

    return migrations


def widen_kinds(conn: Connection, kind: str) -> None:
    """Let ``memories.kind`` take ``kind`` too, in the caller's transaction.

    SQLite cannot alter a CHECK constraint, and rebuilding the table would
    cascade into the vector rows (``memory_vectors`` references it) and copy
    every row. Widening a CHECK changes no stored byte, so the documented
    alternative applies (sqlite.org/lang_altertable.html, "other kinds of table
    schema changes"): rewrite the table's SQL in ``sqlite_master`` and bump
    ``schema_version`` so every connection re-reads it. O(1) at any size."""
    (sql,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'memories'"
    ).fetchone()
    found = re.search(r"CHECK \(kind IN\s*\(([^)]*)\)", sql)
    if found is None:
        raise CorruptDatabaseError(
            "The memories table of this database has no kind constraint mem knows: "
            "restore it from a backup or `mem export` it with the mem that wrote it."
        )
    if f"'{kind}'" in found.group(1):
        return
    at = found.end(1)
    (version,) = conn.execute("PRAGMA schema_version").fetchone()
    conn.execute("PRAGMA writable_schema = ON")
    try:
        conn.execute(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'memories'",
            [f"{sql[:at]}, '{kind}'{sql[at:]}"],
        )
        conn.execute(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        conn.execute("PRAGMA writable_schema = OFF")


def _known_names() -> list[str]:
    return [
        "m001_initial",
        "m002_documents",
        "m003_id_floor",
        "m004_fts_stats",
        "m005_message_id_floor",
        "m006_example_kind",
    ]


def applied_names(conn: Connection) -> list[str] | None:
    """Migration names recorded in the file, or None for a brand-new file."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='_sqlite_migrations'"
    ).fetchone()
    if not exists:
        return None
    rows = conn.execute(
        "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid",
        [MIGRATION_SET],
    ).fetchall()
    return [r[0] for r in rows]


def schema_version() -> int:
    return len(_known_names())


def ensure_schema(conn: Connection) -> None:
    """Bring the file up to date; refuse one written by a newer mem."""
    applied = applied_names(conn)
    known = _known_names()
    if applied is not None:
        unknown = [name for name in applied if name not in known]
        if unknown:
            raise SchemaTooNewError(
                f"This database was written by a newer mem (schema {len(applied)} > "
                f"{len(known)}): upgrade mem with `pip install -U mem`."
            )
        if applied == known:
            return
    from sqlite_utils import Database

    # One write transaction around the whole upgrade: a second process that
    # opens the same new file waits, then finds the migrations applied.
    with transaction(conn):
        _migrations().apply(Database(conn))
        conn.execute(
            "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [str(len(known))],
        )
