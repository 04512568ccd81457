"""What every part of :class:`PostgresBackend` stands on: the connection, the
member check, transactions and one statement with its errors translated."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from ..scope import Scope
from .connection import PermissionDeniedError, translate

_WORD = re.compile(r"\w+")


def word_count(content: str, speaker: str | None) -> int:
    """A row's length for BM25: its words, content and speaker (FTS5 counts
    every token, stop words too)."""
    return len(_WORD.findall(content)) + len(_WORD.findall(speaker or ""))


class Base:
    def __init__(self, conn: psycopg.Connection[Any], where: str, dim: int) -> None:
        self.conn = conn
        self.where = where  # the server's URL without its password
        self.dim = dim
        row = conn.execute(
            "SELECT current_user::text, rolsuper OR NOT pg_has_role(current_user, %s, 'MEMBER') "
            "FROM pg_roles WHERE rolname = current_user",
            ["mem_member"],
        ).fetchone()
        assert row is not None
        self.role, self.trusted = str(row[0]), bool(row[1])
        self.lexed: dict[str, list[tuple[int, str]]] = {}  # term -> its lexemes (search)
        self.ranks = ""  # ts_rank of 1 … 256 positions, an array literal (search)
        self.ef_search = 40  # hnsw.ef_search of the session (pgvector's default)

    def check(self, scope: Scope) -> None:
        """A member role acts for its own profile only (RLS would hide the
        rest anyway; this says so instead of answering empty)."""
        if not self.trusted and scope.writes != self.role:
            raise PermissionDeniedError(
                f"Connected to {self.where} as role {self.role!r}, which may act only as "
                f"profile {self.role!r}, not {scope.writes!r}: connect as that profile's role."
            )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()

    def __del__(self) -> None:
        # A backend dropped without close() ends its session with the server.
        if getattr(self, "conn", None) is not None:
            self.close()

    @contextlib.contextmanager
    def transaction(self, scope: Scope) -> Iterator[None]:
        self.check(scope)
        try:
            with self.conn.transaction():
                yield
        except psycopg.Error as err:
            raise translate(err, self.where) from None

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def x(
        self, query: str, params: Sequence[Any] = (), *, prepare: bool | None = None
    ) -> psycopg.Cursor[Any]:
        """Execute one statement; a driver error becomes a one-line MemError.
        ``prepare=False`` plans it anew for its values each time (see psycopg)."""
        try:
            return self.conn.execute(query.encode(), params, prepare=prepare)
        except psycopg.Error as err:
            raise translate(err, self.where) from None
