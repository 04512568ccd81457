"""Encryption at rest with SQLCipher (the optional ``mem[encrypt]`` extra).

SQLCipher encrypts every page, the WAL included, so an encrypted database file
holds no plaintext. ``sqlcipher3`` is a drop-in DB-API driver that also loads
sqlite-vec and has FTS5, so the rest of the engine is unchanged.

The passphrase comes from ``MEM_PASSPHRASE`` or, for an existing encrypted
file, from the system keyring (service ``mem``, user = the file's path) when
the ``keyring`` package and a backend are available. ``encrypt`` / ``decrypt``
convert a whole file with ``sqlcipher_export`` into a new file beside it,
then rename it over the old one, so a crash leaves one complete file. While
they run no other mem process has the file open (:mod:`memory.storage.sqlite.filelock`), so
no acknowledged write can land in the replaced file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from memory.errors import DatabaseError, UsageError, WrongPassphraseError

KEYRING_SERVICE = "mem"


def _driver() -> Any:
    try:
        from sqlcipher3 import dbapi2
    except ImportError:
        raise DatabaseError(
            "Encryption needs SQLCipher: install it with `pip install 'mem[encrypt]'`."
        ) from None
    return dbapi2


def _quote(passphrase: str) -> str:
    return "'" + passphrase.replace("'", "''") + "'"


def keyring_passphrase(path: Path) -> str | None:
    """The passphrase stored in the system keyring for ``path``, if any."""
    try:
        import keyring

        value = keyring.get_password(KEYRING_SERVICE, str(path.resolve()))
    except Exception:  # no keyring package or no backend on this machine
        return None
    return value if isinstance(value, str) and value else None


def store_in_keyring(path: Path, passphrase: str, *, unchanged: bool = False) -> None:
    """Store the passphrase (``unchanged``: before encrypting, so a missing
    keyring backend is found while the file is still plain)."""
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, str(path.resolve()), passphrase)
    except Exception as err:
        note = f"; nothing was changed: {path} is still a plain file" if unchanged else ""
        raise UsageError(
            f"Could not store the passphrase in the system keyring ({err}): use MEM_PASSPHRASE "
            f"instead, or install a keyring backend{note}."
        ) from None


def drop_from_keyring(path: Path) -> None:
    """Best effort: remove a passphrase stored for a conversion that failed."""
    try:
        import keyring

        keyring.delete_password(KEYRING_SERVICE, str(path.resolve()))
    except Exception:  # nothing stored, or no backend
        pass


def passphrase_for(path: Path) -> str | None:
    return os.environ.get("MEM_PASSPHRASE") or keyring_passphrase(path)


def open_encrypted(path: Path, passphrase: str, *, timeout: float) -> Any:
    """A SQLCipher connection with the key applied and checked."""
    from memory.storage.sqlite.filelock import releasing

    dbapi2 = _driver()
    conn = dbapi2.connect(
        str(path), timeout=timeout, isolation_level=None, factory=releasing(dbapi2.Connection)
    )
    try:
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(f"PRAGMA key = {_quote(passphrase)}")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except dbapi2.DatabaseError:
        conn.close()
        raise WrongPassphraseError(
            f"Wrong passphrase for {path} (or the file is damaged): check MEM_PASSPHRASE or the "
            "keyring entry."
        ) from None
    return conn


def _export(source: Any, target: Path, key: str) -> None:
    from memory.storage.sqlite.dbfile import vec_extension_path

    source.enable_load_extension(True)
    source.load_extension(vec_extension_path())
    source.execute(f"ATTACH DATABASE {_quote(str(target))} AS converted KEY {_quote(key)}")
    try:
        source.execute("SELECT sqlcipher_export('converted')")
        version = source.execute("PRAGMA user_version").fetchone()[0]
        source.execute(f"PRAGMA converted.user_version = {int(version)}")
    finally:
        source.execute("DETACH DATABASE converted")


def _swap(path: Path, tmp: Path) -> None:
    os.chmod(tmp, 0o600)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)  # the new file is complete on disk before it replaces the old one
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        if side.exists():
            side.unlink()
    os.replace(tmp, path)


def _checkpoint(conn: Any) -> None:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")


def _plain(path: Path) -> bool:
    from memory.storage.sqlite.dbfile import SQLITE_HEADER

    with open(path, "rb") as handle:
        return handle.read(16) == SQLITE_HEADER


def encrypt_file(path: Path, passphrase: str) -> None:
    """Convert a plain database into an encrypted one, in place, while no other
    mem process has it open (see :mod:`memory.storage.sqlite.filelock`)."""
    from memory.storage.sqlite.dbfile import BUSY_TIMEOUT_MS
    from memory.storage.sqlite.filelock import exclusive

    if not passphrase:
        raise UsageError("Empty passphrase: choose one and set MEM_PASSPHRASE to it.")
    dbapi2 = _driver()
    tmp = path.with_name(path.name + ".encrypting")
    with exclusive(path, tmp, BUSY_TIMEOUT_MS / 1000, "mem encrypt"):
        if not _plain(path):  # converted while we waited
            raise UsageError(f"{path} is already encrypted: nothing to do.")
        conn = dbapi2.connect(str(path), isolation_level=None)
        try:
            conn.execute("PRAGMA cipher_log_level = NONE")
            _checkpoint(conn)
            _export(conn, tmp, passphrase)
        finally:
            conn.close()
        _swap(path, tmp)


def decrypt_file(path: Path, passphrase: str) -> None:
    """Convert an encrypted database back into a plain SQLite file, in place."""
    from memory.storage.sqlite.dbfile import BUSY_TIMEOUT_MS
    from memory.storage.sqlite.filelock import exclusive

    tmp = path.with_name(path.name + ".decrypting")
    with exclusive(path, tmp, BUSY_TIMEOUT_MS / 1000, "mem decrypt"):
        if _plain(path):
            raise UsageError(f"{path} is not encrypted: nothing to do.")
        conn = open_encrypted(path, passphrase, timeout=30)
        try:
            _checkpoint(conn)
            _export(conn, tmp, "")
        finally:
            conn.close()
        _swap(path, tmp)
