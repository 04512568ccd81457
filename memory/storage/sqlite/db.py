"""Opening the SQLite file: driver, extensions, pragmas, permissions, errors.

The stock ``sqlite3`` module here cannot load extensions, so the connection
comes from ``sqlean`` (a drop-in sqlite3 with FTS5 and extension loading), and
sqlite-vec's loadable library is located with ``importlib.util.find_spec`` and
loaded directly: ``import sqlite_vec`` would import numpy (~200 ms of start-up).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlean

from memory.errors import (
    CorruptDatabaseError,
    DatabaseBusyError,
    DatabaseError,
    DiskFullError,
    DiskWriteError,
    ReadOnlyError,
    UsageError,
)
from memory.storage.sqlite import filelock
from memory.storage.sqlite.dbfile import (
    BUSY_TIMEOUT_MS as BUSY_TIMEOUT_MS,  # re-exported: callers import them here
)
from memory.storage.sqlite.dbfile import SQLITE_HEADER as SQLITE_HEADER
from memory.storage.sqlite.dbfile import vec_extension_path as vec_extension_path

Connection = Any  # sqlean.Connection: untyped C extension


def _plain_connection(path: Path) -> Connection | None:
    """A plain SQLite connection to ``path``, or None when SQLite says the file
    is not a database (encrypted, or not SQLite at all).

    Asked of SQLite, not read with ``open()``: closing any descriptor of the
    file drops every POSIX lock this process holds on it, so a second
    connection (the REPL's formation thread) would strip the first's locks."""
    try:
        conn = sqlean.connect(
            str(path),
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            factory=filelock.releasing(sqlean.Connection),
        )
    except sqlean.Error as err:
        raise translate(err, path) from None
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlean.DatabaseError as err:
        conn.close()
        if "not a database" in str(err):
            return None
        raise translate(err, path) from None
    return conn


def _create_private_file(path: Path) -> None:
    """Create the database file with mode 0600 before SQLite opens it, so that
    the journal files SQLite derives from it inherit private permissions."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
    except FileExistsError:
        pass
    except PermissionError:
        raise ReadOnlyError(
            f"Cannot create {path}: the folder is not writable; set MEM_HOME or pass --db "
            "to a writable place."
        ) from None
    except OSError as err:
        raise DatabaseError(f"Cannot create {path}: {err.strerror}; pass --db elsewhere.") from None


def connect(path: Path, *, create: bool = True) -> Connection:
    """Open (creating if asked) the database with every pragma mem relies on."""
    if not path.exists():
        if not create:
            raise DatabaseError(f"No database at {path}: run a mem command to create one.")
        _create_private_file(path)
    # Held while the connection is open: `mem encrypt` waits for it (see filelock),
    # and a command that waited for a conversion looks at the file only afterwards.
    held = filelock.hold_shared(path, BUSY_TIMEOUT_MS / 1000)
    try:
        conn = _open(path)
    except BaseException:
        if held is not None:
            held.close()
        raise
    conn.held_lock = held
    return conn


# Files this process has opened encrypted, by (device, inode). sqlean and
# SQLCipher are two SQLite libraries, each blind to the other's POSIX locks: a
# sqlean probe of such a file, once closed, drops every lock an open SQLCipher
# connection of this process holds on it (the REPL's formation and tending
# threads open a second connection), and that connection then reads a
# "malformed" file or fails with an I/O error. So a file known encrypted is not
# probed again. A file encrypted or decrypted in place is a new inode.
_encrypted: set[tuple[int, int]] = set()


def _open(path: Path) -> Connection:
    from memory.storage.sqlite import crypto

    conn: Connection | None = None
    passphrase = os.environ.get("MEM_PASSPHRASE") or None
    stat = path.stat()
    inode = (stat.st_dev, stat.st_ino)
    if inode in _encrypted:
        passphrase = passphrase or crypto.passphrase_for(path)
        if passphrase is None:
            raise CorruptDatabaseError(
                f"{path} is encrypted: set MEM_PASSPHRASE (or keep the passphrase in the "
                "keyring) to open it."
            )
    elif stat.st_size or not passphrase:  # with a passphrase, a new file is encrypted
        conn = _plain_connection(path)  # an empty file opens as a plain one
        if conn is not None and passphrase:
            conn.close()
            raise UsageError(
                f"MEM_PASSPHRASE is set but {path} is not encrypted: run `mem encrypt` to "
                "encrypt it, or unset MEM_PASSPHRASE."
            )
        if conn is None:
            passphrase = crypto.passphrase_for(path)
            if passphrase is None:
                raise CorruptDatabaseError(
                    f"{path} is not a mem database (not SQLite, or encrypted): set "
                    "MEM_PASSPHRASE if it is encrypted, or move it away or pass --db with "
                    "another path."
                )
    if conn is None:
        assert passphrase is not None
        try:
            conn = crypto.open_encrypted(path, passphrase, timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlean.Error as err:
            raise translate(err, path) from None
        _encrypted.add(inode)
    try:
        conn.enable_load_extension(True)
        conn.load_extension(vec_extension_path())
        conn.enable_load_extension(False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        _use_wal(conn)
    except Exception as err:
        conn.close()
        raise translate(err, path) from None
    return conn


def _use_wal(conn: Connection) -> None:
    """Switch a new file to WAL. The switch needs an exclusive lock, and SQLite
    answers "locked" at once (without the busy handler) while another process
    is creating the same file, so it is retried until the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as err:
            text = str(err).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def translate(err: Exception, path: Path | str = "the database") -> DatabaseError:
    """Map a driver error to a named error whose message says the fix."""
    text = str(err).lower()
    if "not a database" in text or "malformed" in text or "file is encrypted" in text:
        return CorruptDatabaseError(
            f"{path} is damaged or not a mem database: restore a backup, or move it away "
            "and start a new one."
        )
    if "locked" in text or "busy" in text:
        return DatabaseBusyError(
            f"{path} stayed locked by another mem process for {BUSY_TIMEOUT_MS // 1000} s: "
            "close the other process and retry."
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return ReadOnlyError(
            f"Cannot write {path}: make the file and its folder writable, or set MEM_HOME "
            "to a writable folder."
        )
    if "disk is full" in text or "database or disk is full" in text:
        return DiskFullError(
            f"The disk holding {path} is full: free some space; nothing stored was lost."
        )
    if "disk i/o error" in text or ("sqlite-vec" in text and "could not insert" in text):
        # sqlite-vec reports a failed write of its own pages without the I/O code.
        return DiskWriteError(
            f"Writing {path} failed ({str(err).strip().rstrip('.')}): the disk may be full, at "
            "a file-size limit or failing; free some space or check the disk, then retry; "
            "nothing stored was lost."
        )
    return DatabaseError(
        f"Database error on {path}: {err}; retry, or run with MEM_DEBUG=1 and report it."
    )


def is_driver_error(err: BaseException) -> bool:
    """True for an exception raised by the SQLite driver (sqlean, sqlite3, SQLCipher)."""
    module = type(err).__module__ or ""
    return module.split(".")[0] in ("sqlean", "sqlite3", "sqlcipher3")


@contextlib.contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or a savepoint when nested.

    IMMEDIATE takes the write lock up front, so a second process waits on the
    busy timeout instead of failing a lock upgrade with "database is locked".
    """
    if conn.in_transaction:
        # One name for every level: when a block ends, the newest savepoint of
        # that name is its own (inner ones have ended), and the statements stay
        # in the connection's cache instead of being prepared afresh each time.
        name = "mem_savepoint"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                conn.execute(f"RELEASE SAVEPOINT {name}")
            raise
        else:
            conn.execute(f"RELEASE SAVEPOINT {name}")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")
