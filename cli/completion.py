"""Shell-completion look-ups: profile names, memory ids, conversation ids.

They run on every Tab press, so they stay cheap: the standard library's
sqlite3, the file opened read-only (never created, never migrated), a bounded
query, and silence on any failure (no database yet, an encrypted file, a
damaged one): completion offers nothing rather than an error.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from memory.config import DEFAULT_PROFILE, SYSTEM_PROFILE, db_path

MAX_CANDIDATES = 200


def query(db: str | None, sql: str, params: tuple[str, ...] = ()) -> list[str]:
    path = Path(db_path(db))
    if not path.is_file():
        return []
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=0.2)
    except (sqlite3.Error, ValueError):
        return []
    try:
        return [str(row[0]) for row in conn.execute(sql, params).fetchmany(MAX_CANDIDATES)]
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def _profile(profile: str | None) -> str:
    return profile or os.environ.get("MEM_PROFILE") or DEFAULT_PROFILE


def profile_names(db: str | None) -> list[str]:
    return [
        name
        for name in query(
            db,
            "SELECT profile FROM memories UNION SELECT profile FROM conversations ORDER BY 1",
        )
        if name != SYSTEM_PROFILE
    ]


def memory_ids(db: str | None, profile: str | None) -> list[str]:
    return query(
        db,
        "SELECT id FROM memories WHERE profile = ? AND kind NOT IN ('message', 'document') "
        "ORDER BY id DESC",
        (_profile(profile),),
    )


def conversation_ids(db: str | None, profile: str | None) -> list[str]:
    return query(
        db,
        "SELECT id FROM conversations WHERE profile = ? ORDER BY updated_at DESC",
        (_profile(profile),),
    )
