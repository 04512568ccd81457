"""Files added with ``mem add``, over SQLite: the ``documents`` row of each
file, whose chunks are memories of kind ``document`` naming its path."""

from __future__ import annotations

from memory import timeutil
from memory.storage.records import Document, DocumentInfo
from memory.storage.scope import Scope
from memory.storage.sqlite import lineage as _lineage
from memory.storage.sqlite.db import Connection, transaction
from memory.storage.sqlite.filters import scope_sql

_DOC_COLUMNS = "path, profile, format, hash, size, mtime, chunks, chunker, added_at, updated_at"


class DocumentsMixin:
    conn: Connection

    def put_document(self, scope: Scope, document: DocumentInfo, *, at: str = "") -> None:
        d = document
        stamp = at or timeutil.now_iso()
        self.conn.execute(
            "INSERT INTO documents(profile, path, format, hash, size, mtime, chunks, chunker, "
            "added_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(profile, path) DO UPDATE SET format = excluded.format, "
            "hash = excluded.hash, size = excluded.size, mtime = excluded.mtime, "
            "chunks = excluded.chunks, chunker = excluded.chunker, "
            "updated_at = excluded.updated_at",
            [scope.writes, d.path, d.format, d.hash, d.size, d.mtime, d.chunks, d.chunker]
            + [stamp, stamp],
        )

    def documents(self, scope: Scope, *, path: str | None = None) -> list[Document]:
        where, params = scope_sql(scope, "documents")
        if path is not None:
            where += " AND path = ?"
            params.append(path)
        rows = self.conn.execute(
            f"SELECT {_DOC_COLUMNS} FROM documents WHERE {where} ORDER BY path, profile", params
        ).fetchall()
        return [Document(*r) for r in rows]

    def remove_document(self, scope: Scope, path: str, *, reason: str) -> int:
        with transaction(self.conn):
            ids = [
                int(r[0])
                for r in self.conn.execute(
                    "SELECT id FROM memories WHERE kind = 'document' AND profile = ? "
                    "AND json_extract(metadata, '$.path') = ? ORDER BY id",
                    [scope.writes, path],
                ).fetchall()
            ]
            for memory_id in ids:
                detail = {"kind": "document", "source": "document", "reason": reason}
                _lineage.delete_row(self.conn, memory_id, detail=detail)
            cur = self.conn.execute(
                "DELETE FROM documents WHERE profile = ? AND path = ?", [scope.writes, path]
            )
            if ids or cur.rowcount:
                _lineage.insert_event(
                    self.conn,
                    None,
                    "forget",
                    at="",
                    detail={"document": path, "profile": scope.writes, "chunks": len(ids)},
                )
        return len(ids)
