"""Writing many rows per round trip over PostgreSQL: an import's batch of
messages (``mem import``, ``mem copy``) in pipelined ``executemany`` calls,
where row-by-row writes wait for the server once per statement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import psycopg

from ... import timeutil
from ...errors import NotFoundError
from ..records import NEW_MEMORY_COLUMNS, NEW_MESSAGE_COLUMNS, NewMemory, NewMessage
from ..scope import Scope
from .base import word_count
from .search import SearchMixin


class BulkMixin(SearchMixin):
    def add_messages(
        self,
        scope: Scope,
        batch: Sequence[tuple[NewMessage, NewMemory | None, Sequence[float]]],
    ) -> list[int]:
        """The batch in three pipelined ``executemany`` (messages, their
        memories, the vectors) and one update per conversation: the rows
        ``add_message`` and ``add_memory`` write, without their round trips."""
        if not batch:
            return []
        for _, memory, vector in batch:
            if memory is not None:
                self._query_vector(vector)
                memory.check()
        now = timeutil.now_iso()
        stamps = [m.created_at or now for m, _, _ in batch]
        with self.transaction(scope):
            wanted = sorted({m.conversation for m, _, _ in batch})
            owned = {
                str(r[0])
                for r in self.x(
                    "SELECT id FROM conversations WHERE id = ANY(%s) AND profile = %s",
                    [wanted, scope.writes],
                ).fetchall()
            }
            for m, _, _ in batch:
                if m.conversation not in owned:
                    raise NotFoundError(
                        f"No conversation {m.conversation!r} in profile {scope.writes!r}: "
                        "see `mem conversations` for ids."
                    )
            ids = self._returning(
                f"INSERT INTO messages ({NEW_MESSAGE_COLUMNS}, metadata) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
                [(*m.values(scope.writes, now), psycopg.types.json.Jsonb(m.metadata))
                 for m, _, _ in batch],
            )  # fmt: skip
            indexed = [
                (replace(memory, source_message_id=mid), self._query_vector(vector))
                for (_, memory, vector), mid in zip(batch, ids, strict=True)
                if memory is not None
            ]
            memory_ids = self._returning(
                f"INSERT INTO memories ({NEW_MEMORY_COLUMNS}, metadata, tokens) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
                [(*m.values(scope.writes, now), psycopg.types.json.Jsonb(m.metadata),
                  word_count(m.content, m.speaker)) for m, _ in indexed],
            )  # fmt: skip
            with self.conn.cursor() as cur:
                cur.executemany(
                    b"INSERT INTO memory_vectors (id, profile, embedding) VALUES (%s, %s, %s)",
                    [(i, scope.writes, v) for i, (_, v) in zip(memory_ids, indexed, strict=True)],
                )
                latest: dict[str, str] = {}
                for (m, _, _), stamp in zip(batch, stamps, strict=True):
                    latest[m.conversation] = max(latest.get(m.conversation, stamp), stamp)
                cur.executemany(
                    b"UPDATE conversations SET updated_at = greatest(updated_at, %s) "
                    b"WHERE id = %s AND profile = %s",
                    [(stamp, conv, scope.writes) for conv, stamp in sorted(latest.items())],
                )
        return ids

    def _returning(self, query: str, rows: list[tuple[Any, ...]]) -> list[int]:
        """``executemany`` of an ``INSERT … RETURNING id`` (pipelined): the ids."""
        if not rows:
            return []
        ids: list[int] = []
        with self.conn.cursor() as cur:
            cur.executemany(query.encode(), rows, returning=True)
            while True:
                found = cur.fetchone()
                assert found is not None
                ids.append(int(found[0]))
                if not cur.nextset():
                    break
        return ids
