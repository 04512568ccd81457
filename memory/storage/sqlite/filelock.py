"""The conversion lock: no mem process has the database open while
``mem encrypt`` or ``mem decrypt`` replaces the file.

A conversion copies the database into a new file and renames it over the old
one. A process that had the old file open would go on writing into the
replaced inode, and its acknowledged writes would vanish. So every connection
holds a shared ``flock`` on ``<db>-lock`` (a sidecar file, never replaced, so
that closing it cannot drop SQLite's own POSIX locks on the database) for as
long as it is open, and a conversion holds it exclusively.

``flock`` does not queue: a process that opens and closes the database in a
loop would starve a waiting conversion. The conversion therefore first raises
a gate, an exclusive ``flock`` on its temporary file (``<db>.encrypting``);
an opener that finds the gate held steps back until it is gone. A gate left by
a crashed conversion holds no lock and is ignored.

Where ``fcntl`` is missing (Windows) or the folder is read-only, nothing is
locked (and nothing can be converted there either).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from memory.errors import DatabaseBusyError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = "-lock"
GATE_SUFFIXES = (".encrypting", ".decrypting")
POLL_SECONDS = 0.01


_RELEASING: dict[type, type] = {}


def releasing(base: type) -> type:
    """A subclass of a driver's connection class whose ``close`` also closes
    ``held_lock`` (the file :func:`hold_shared` returned), for ``factory=``."""
    if base not in _RELEASING:
        base_close = base.close  # type: ignore[attr-defined]

        def close(self: Any) -> None:
            try:
                base_close(self)
            finally:
                held, self.held_lock = self.held_lock, None
                if held is not None:
                    held.close()

        attrs = {"held_lock": None, "close": close}
        _RELEASING[base] = type(f"Releasing{base.__name__}", (base,), attrs)
    return _RELEASING[base]


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + LOCK_SUFFIX)


def gate_path(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


class Held:
    """An open lock file; closing it (or dropping it) releases the lock."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    def fileno(self) -> int:
        assert self.fd is not None
        return self.fd

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:  # a connection never closed still lets go of its lock
        self.close()


def _open_lock(path: Path) -> Held | None:
    try:
        return Held(os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o600))
    except OSError:
        return None


def _gated(path: Path) -> bool:
    """True while a conversion of ``path`` is waiting or running."""
    assert fcntl is not None
    for suffix in GATE_SUFFIXES:
        try:
            fd = os.open(gate_path(path, suffix), os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
    return False


def hold_shared(path: Path, timeout: float) -> Held | None:
    """The open file holding a shared lock on ``path`` (close it to release),
    once no conversion is waiting or running; None where nothing is locked."""
    if fcntl is None:
        return None
    handle = _open_lock(path)
    if handle is None:
        return None
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            if not _gated(path):
                return handle
            fcntl.flock(handle, fcntl.LOCK_UN)
        except BlockingIOError:
            pass
        if time.monotonic() > deadline:
            handle.close()
            raise DatabaseBusyError(
                f"{path} is being encrypted or decrypted by another mem process: retry when it "
                "has finished."
            )
        time.sleep(POLL_SECONDS)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _take_gate(gate: Path) -> int:
    """The gate, locked and emptied; conversions of one file run one at a time."""
    assert fcntl is not None
    while True:
        fd = os.open(gate, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _same_file(fd, gate):  # not unlinked by the conversion we waited for
            os.ftruncate(fd, 0)
            return fd
        os.close(fd)


@contextlib.contextmanager
def exclusive(path: Path, gate: Path, timeout: float, command: str) -> Iterator[None]:
    """Hold ``path`` for a conversion writing into ``gate``: the gate first (new
    openers wait), then the lock (open connections finish and close). The
    conversion renames the gate over ``path``; if it does not, it is removed."""
    if fcntl is None:
        yield
        return
    gate_fd = _take_gate(gate)
    handle = None
    try:
        handle = _open_lock(path)
        deadline = time.monotonic() + timeout
        while handle is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DatabaseBusyError(
                        f"Another mem process kept {path} open for {timeout:.0f} s (a chat, or "
                        f"a long command): close it and run `{command}` again; nothing was "
                        "changed."
                    ) from None
                time.sleep(POLL_SECONDS)
        yield
    finally:
        if _same_file(gate_fd, gate):
            gate.unlink()
        if handle is not None:
            handle.close()
        os.close(gate_fd)
