"""The database file as a whole, without opening a :class:`memory.Memory`:
encrypting and decrypting it, what ``mem --version -v`` reports about it, the
read-only look-ups shell completion makes on every Tab, and the named error
for a driver failure.

Cheap to import (each function imports what it needs): completion and
``--version`` must answer as fast as ``mem --help``. The look-ups use the
standard library's sqlite3 on the file opened read-only (never created, never
migrated), a bounded query, and give nothing on any failure (no database yet,
an encrypted file, a damaged one).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from memory.config import DEFAULT_PROFILE, SYSTEM_PROFILE, db_path, db_target
from memory.errors import MemError, UsageError

MAX_CANDIDATES = 200
Passphrase = Callable[[], str]
DbPath = str | os.PathLike[str] | None


def database_error(err: BaseException, db: DbPath = None) -> MemError | None:
    """A driver error raised after the database was opened (a damaged page, a
    full disk, a read-only file) as the named error that says the fix; None
    for any other exception."""
    from memory.storage.sqlite.db import is_driver_error, translate

    if not is_driver_error(err) or not isinstance(err, Exception):
        return None
    target = db_target(db)
    if isinstance(target, str):  # a server's errors are named by its backend
        return None
    return translate(err, target)


# ------------------------------------------------------------------ encryption
def is_encrypted(path: Path) -> bool:
    """True when the file is not a plain SQLite file (SQLCipher's look random)."""
    from memory.storage.sqlite.db import SQLITE_HEADER

    with open(path, "rb") as handle:
        head = handle.read(16)
    return bool(head) and head != SQLITE_HEADER


def _existing(db: DbPath) -> Path:
    if isinstance(db_target(db), str):
        raise UsageError(
            "mem encrypt and mem decrypt convert a SQLite file; a PostgreSQL database is "
            "protected by its server (roles, TLS, disk encryption): give --db PATH for a file."
        )
    path = db_path(db)
    if not path.exists():
        raise UsageError(f"No database at {path}: nothing to convert; check --db or MEM_HOME.")
    return path


def encrypt(db: DbPath, passphrase: Passphrase, *, keyring: bool = False) -> Path:
    """Encrypt the database file in place with SQLCipher. ``passphrase`` is
    asked only once the file is known to need it; with ``keyring`` it is also
    stored in the system keyring, first, so a missing keyring backend leaves
    the file as it was. Returns the file's path."""
    from memory.storage.sqlite import crypto

    path = _existing(db)
    if is_encrypted(path):
        raise UsageError(f"{path} is already encrypted: nothing to do.")
    secret = passphrase()
    if keyring:
        crypto.store_in_keyring(path, secret, unchanged=True)
    try:
        crypto.encrypt_file(path, secret)
    except BaseException:
        if keyring:
            crypto.drop_from_keyring(path)
        raise
    return path


def decrypt(db: DbPath, passphrase: Passphrase) -> Path:
    """Turn an encrypted database back into a plain SQLite file; the passphrase
    is MEM_PASSPHRASE's or the keyring's, else ``passphrase()``'s."""
    from memory.storage.sqlite import crypto

    path = _existing(db)
    if not is_encrypted(path):
        raise UsageError(f"{path} is not encrypted: nothing to do.")
    crypto.decrypt_file(path, crypto.passphrase_for(path) or passphrase())
    return path


# ------------------------------------------------------------------ --version
@dataclass
class About:
    """What this installation is and what its database was built with."""

    schema: int
    embedder: str
    embedder_configured: bool
    database: Path | str  # a server's URL without its password
    built_with: str | None  # the database's embedder; None when unreadable or absent
    exists: bool
    plugins: list[str] = field(default_factory=list)


def about(db: DbPath = None) -> About:
    """The versions and names ``mem --version -v`` prints; opens nothing for writing."""
    from memory.config import load_config, resolve_db, resolve_embedder
    from memory.models.embed import DEFAULT_EMBEDDER
    from memory.plugins import plugin_names
    from memory.storage.sqlite.schema import schema_version

    cfg = load_config()
    configured = resolve_embedder(None, cfg)
    target = db_target(resolve_db(db, cfg))
    if isinstance(target, str):
        where, built_with = _server_about(target)
        return About(
            schema=schema_version(),
            embedder=configured or DEFAULT_EMBEDDER,
            embedder_configured=bool(configured),
            database=where,
            built_with=built_with,
            exists=built_with is not None,
            plugins=plugin_names(),
        )
    built = _query(target, "SELECT value FROM meta WHERE key = 'embedder'")
    return About(
        schema=schema_version(),
        embedder=configured or DEFAULT_EMBEDDER,
        embedder_configured=bool(configured),
        database=target,
        built_with=built[0] if built else None,
        exists=target.exists(),
        plugins=plugin_names(),
    )


def _server_about(url: str) -> tuple[str, str | None]:
    """The server's URL without its password, and its embedder (None when it
    cannot be reached within a second or has no mem schema yet)."""
    try:
        from memory.storage.postgres import redact
        from memory.storage.postgres.connection import connect
    except ImportError:  # psycopg not installed: the URL alone
        return "postgresql://…", None
    try:
        conn = connect(url, connect_timeout=1)
    except MemError:
        return redact(url), None
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'embedder'").fetchone()
        return redact(url), None if row is None else str(row[0])
    except Exception:
        return redact(url), None
    finally:
        conn.close()


# ------------------------------------------------------------------ completion
def _query(db: DbPath, sql: str, params: tuple[str, ...] = ()) -> list[str]:
    if isinstance(db_target(db), str):  # a server: no look-ups on every Tab
        return []
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


def profile_names(db: DbPath = None) -> list[str]:
    """The profiles that hold something (not the shared system one)."""
    return [
        name
        for name in _query(
            db,
            "SELECT profile FROM memories UNION SELECT profile FROM conversations ORDER BY 1",
        )
        if name != SYSTEM_PROFILE
    ]


def memory_ids(db: DbPath = None, profile: str | None = None) -> list[str]:
    """Ids of the profile's memories (no messages or chunks), newest first."""
    return _query(
        db,
        "SELECT id FROM memories WHERE profile = ? AND kind NOT IN ('message', 'document') "
        "ORDER BY id DESC",
        (_profile(profile),),
    )


def conversation_ids(db: DbPath = None, profile: str | None = None) -> list[str]:
    """Ids of the profile's conversations, most recent first."""
    return _query(
        db,
        "SELECT id FROM conversations WHERE profile = ? ORDER BY updated_at DESC",
        (_profile(profile),),
    )
