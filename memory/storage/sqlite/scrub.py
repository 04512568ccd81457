"""Scrubbing the write-ahead log after a forget: on its own so that the store
can finish a pending scrub when it opens without importing the forgetting
verbs (which import the store)."""

from __future__ import annotations

from memory.storage.sqlite.db import BUSY_TIMEOUT_MS, Connection, is_driver_error, transaction

# How long a forget waits for other readers before leaving the WAL scrub to
# the next open (the text is deleted either way; see ``scrub_wal``).
SCRUB_WAIT_MS = 2000
REOPEN_SCRUB_WAIT_MS = 200
PENDING_KEY = "scrub_pending"


def scrub_wal(conn: Connection, *, wait_ms: int = SCRUB_WAIT_MS) -> bool:
    """Rewrite the FTS index without the deleted entries, then copy the WAL
    into the main file and truncate it to zero bytes. False when another
    reader kept its snapshot past ``wait_ms``: the WAL may still hold old
    text, and the ``scrub_pending`` mark in ``meta`` has the next open finish.

    A contentless FTS5 table records deletions as tombstones and keeps the
    terms in its segments until they are merged, so the index is optimised
    (about 0.2 s at 100k memories); ``secure_delete`` zeroes the pages freed.
    """
    conn.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
    try:
        try:
            with transaction(conn):
                conn.execute("INSERT INTO memories_fts(memories_fts) VALUES ('optimize')")
        except Exception as err:  # another writer kept the lock: the next open retries
            if is_driver_error(err) and ("locked" in str(err) or "busy" in str(err)):
                return False
            raise
        if conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
            return False
        with transaction(conn):
            conn.execute("DELETE FROM meta WHERE key = ?", [PENDING_KEY])
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return True


def finish_pending_scrub(conn: Connection) -> None:
    """At open: finish a scrub an earlier forget could not (see ``scrub_wal``)."""
    if conn.execute("SELECT 1 FROM meta WHERE key = ?", [PENDING_KEY]).fetchone() is None:
        return
    try:
        scrub_wal(conn, wait_ms=REOPEN_SCRUB_WAIT_MS)
    except Exception as err:  # a read-only or busy file still opens for reading
        if not is_driver_error(err):
            raise
        if conn.in_transaction:
            conn.execute("ROLLBACK")
