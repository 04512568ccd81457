"""Files added with ``mem add``, over PostgreSQL: one ``documents`` row per
file and namespace; its chunks are memories of kind ``document`` naming it."""

from __future__ import annotations

from ... import timeutil
from ..records import Document, DocumentInfo
from ..scope import Scope
from . import lineage as _lineage
from .base import Base
from .filters import scope_sql

_DOC_COLUMNS = "path, profile, format, hash, size, mtime, chunks, chunker, added_at, updated_at"


class DocumentsMixin(Base):
    def put_document(self, scope: Scope, document: DocumentInfo, *, at: str = "") -> None:
        self.check(scope)
        d = document
        stamp = at or timeutil.now_iso()
        self.x(
            "INSERT INTO documents (profile, path, format, hash, size, mtime, chunks, chunker, "
            "added_at, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT (profile, path) DO UPDATE SET format = excluded.format, "
            "hash = excluded.hash, size = excluded.size, mtime = excluded.mtime, "
            "chunks = excluded.chunks, chunker = excluded.chunker, "
            "updated_at = excluded.updated_at",
            [scope.writes, d.path, d.format, d.hash, d.size, d.mtime, d.chunks, d.chunker]
            + [stamp, stamp],
        )

    def documents(self, scope: Scope, *, path: str | None = None) -> list[Document]:
        self.check(scope)
        where, params = scope_sql(scope, "documents")
        if path is not None:
            where += " AND path = %s"
            params.append(path)
        rows = self.x(
            f"SELECT {_DOC_COLUMNS} FROM documents WHERE {where} ORDER BY path, profile", params
        ).fetchall()
        return [Document(*r) for r in rows]

    def remove_document(self, scope: Scope, path: str, *, reason: str) -> int:
        with self.transaction(scope):
            ids = [
                int(r[0])
                for r in self.x(
                    "SELECT id FROM memories WHERE kind = 'document' AND profile = %s "
                    "AND metadata->>'path' = %s ORDER BY id",
                    [scope.writes, path],
                ).fetchall()
            ]
            for memory_id in ids:
                detail = {"kind": "document", "source": "document", "reason": reason}
                _lineage.delete_row(self, memory_id, detail=detail)
            cur = self.x(
                "DELETE FROM documents WHERE profile = %s AND path = %s", [scope.writes, path]
            )
            if ids or cur.rowcount:
                _lineage.insert_event(
                    self, None, "forget", profile=scope.writes,
                    detail={"document": path, "profile": scope.writes, "chunks": len(ids)},
                )  # fmt: skip
        return len(ids)
