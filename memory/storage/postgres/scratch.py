"""A throw-away database on a server: ``mem eval DIR --db postgresql://…``
imports an eval folder into one, searches it and drops it, as it does with a
temporary SQLite file. The role needs CREATEDB (the owner's, not a member's)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg

from ...errors import UsageError
from .connection import connect, redact, translate


@contextlib.contextmanager
def temporary_database(url: str) -> Iterator[str]:
    """The URL of a new, empty database on ``url``'s server, dropped on exit."""
    name = f"mem_eval_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        raise UsageError("A temporary database needs a postgresql:// URL.")
    conn = connect(url)
    try:
        try:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        except psycopg.errors.InsufficientPrivilege:
            raise UsageError(
                f"The role of {redact(url)} may not create a temporary database: evaluate as "
                "the owner, or import the folder and run `mem eval DIR --live --db URL`."
            ) from None
        except psycopg.Error as err:
            raise translate(err, url) from None
        try:
            yield parts._replace(path=f"/{name}").geturl()
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
    finally:
        conn.close()
