"""The kinds a memory row may have, as a constraint the server checks.

The first PostgreSQL schema left ``memories.kind`` unchecked (the engine
validated it); SQLite has always had a CHECK. Migration 5 gives PostgreSQL
the same constraint, with the ``example`` kind (in-context examples) added.
A later kind is another migration calling :func:`constrain` with its list:
a released migration's list never changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

CONSTRAINT = "memories_kind"

WITH_EXAMPLES = ("fact", "instruction", "message", "episode", "document", "summary", "example")


def constrain(conn: psycopg.Connection[Any], kinds: Sequence[str]) -> None:
    """Replace the kind constraint with one allowing exactly ``kinds`` (in the
    migration's transaction; the check reads each row once)."""
    conn.execute(
        sql.SQL("ALTER TABLE memories DROP CONSTRAINT IF EXISTS {}").format(
            sql.Identifier(CONSTRAINT)
        )
    )
    conn.execute(
        sql.SQL("ALTER TABLE memories ADD CONSTRAINT {} CHECK (kind IN ({}))").format(
            sql.Identifier(CONSTRAINT), sql.SQL(", ").join(sql.Literal(k) for k in kinds)
        )
    )
