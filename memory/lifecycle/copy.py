"""Copy a whole store into another (``mem copy``): SQLite ↔ PostgreSQL.

Every profile (the shared ``system`` one too) goes through the same code as
``mem export`` and ``mem import``, so the copy is lossless the way a round trip
is (ids aside), each line passes the secret gate, and messages keep their
import keys. The export of each profile is spooled to a private temporary file
first (not held in memory), then imported in one transaction per profile: a copy
killed half-way leaves the target with whole profiles only, and running it again
adds what is missing and nothing twice (import is idempotent). A target that
holds other data is merged into the same way.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memory.config import is_server_url
from memory.errors import UsageError
from memory.lifecycle.transfer import ImportReport, export, import_file
from memory.storage.scope import SYSTEM
from memory.store import MemoryStore

Progress = Callable[[int, int], None]
Location = str | os.PathLike[str]

# Every table that names a profile holds the profiles a copy must carry.


@dataclass
class CopyReport:
    """What a copy read and what the target gained (``*_skipped``: already there)."""

    source: str
    target: str
    profiles: list[str] = field(default_factory=list)
    rows: int = 0
    messages_added: int = 0
    messages_skipped: int = 0
    memories_added: int = 0
    memories_skipped: int = 0
    documents_added: int = 0
    conversations: int = 0
    seconds: float = 0.0

    def add(self, report: ImportReport) -> None:
        self.messages_added += report.messages_added
        self.messages_skipped += report.messages_skipped
        self.memories_added += report.memories_added
        self.memories_skipped += report.memories_skipped
        self.documents_added += report.documents_added

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "profiles": self.profiles,
            "rows": self.rows,
            "conversations": self.conversations,
            "messages_added": self.messages_added,
            "messages_skipped": self.messages_skipped,
            "memories_added": self.memories_added,
            "memories_skipped": self.memories_skipped,
            "documents_added": self.documents_added,
            "seconds": round(self.seconds, 3),
        }


def profiles(store: MemoryStore) -> list[str]:
    """Every profile the store holds rows of (on a server: that the role sees)."""
    return store.backend.namespaces(store.scope)


def _is_file(location: Location) -> bool:
    return not (isinstance(location, str) and is_server_url(location))


def _same(first: MemoryStore, second: MemoryStore) -> bool:
    if first.url is None and second.url is None:
        return os.path.realpath(first.path) == os.path.realpath(second.path)
    return first.location == second.location


def _target(location: Location) -> Location:
    """A path, ``sqlite:///path`` (the file) or a ``postgresql://`` URL, as
    :meth:`memory.Memory.open` takes them."""
    if isinstance(location, str) and "://" in location:
        if is_server_url(location):
            return location
        scheme, _, rest = location.partition("://")
        if scheme != "sqlite" or not rest:
            # Not echoed: a URL may hold a password.
            raise UsageError(
                f"Unsupported database URL scheme {scheme[:20]!r}: give a file path, "
                "sqlite:///PATH or postgresql://user@host/dbname."
            )
        return rest
    return location


def copy_store(
    source: Location,
    target: Location,
    *,
    progress: Progress | None = None,
    secrets: str | None = None,
) -> CopyReport:
    """Copy every profile of ``source`` into ``target`` (files or URLs), merging
    into what the target holds; see the module docstring. ``progress(done, total)``
    counts export lines; ``secrets`` is the gate's policy for the lines read."""
    import time

    src, dst = _target(source), _target(target)
    if _is_file(src) and not Path(src).is_file():
        raise UsageError(f"No database at {src}: give an existing file or a server URL.")
    if _is_file(src) and _is_file(dst) and os.path.realpath(src) == os.path.realpath(dst):
        raise UsageError(f"Source and target are the same file ({src}): give another target.")
    policy = secrets or "redact"

    def open_source(profile: str, embedder: str | None) -> MemoryStore:
        return MemoryStore.open(src, profile=profile, embedder=embedder, secrets=policy)

    def open_target(profile: str, embedder: str | None) -> MemoryStore:
        return MemoryStore.open(dst, profile=profile, embedder=embedder, secrets=policy)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mem-copy-") as spool:  # 0700, removed after
        files: list[tuple[str, Path, int]] = []
        with open_source(SYSTEM, None) as first:
            embedder = first.embedder.name
            names = profiles(first)
            report = CopyReport(source=first.location, target="")
            with open_target(SYSTEM, embedder) as dest:
                report.target = dest.location
                if _same(first, dest):
                    raise UsageError(
                        f"Source and target are the same database ({first.location}): "
                        "give another target."
                    )
        for name in names or [SYSTEM]:
            path = Path(spool) / f"{len(files)}.jsonl"
            with open_source(name, None) as reader, _private(path) as out:
                counts = export(reader, out)
            report.conversations += counts["conversations"]
            with path.open("rb") as lines:
                rows = sum(1 for _ in lines)
            files.append((name, path, rows))
        report.profiles = [name for name, _, rows in files if rows]
        total = sum(rows for _, _, rows in files)
        report.rows, done = total, 0
        if progress:
            progress(0, total)
        for name, path, rows in files:
            if not rows:
                continue
            offset = done

            def step(n: int, _of: int, offset: int = offset) -> None:
                if progress:
                    progress(offset + n, total)

            with open_target(name, embedder) as writer:
                report.add(import_file(writer, path, progress=step))
            done += rows
            path.unlink()
    report.seconds = time.monotonic() - started
    return report


def _private(path: Path) -> Any:
    """A new text file only this user can read (an export is as private as the store)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return open(fd, "w", encoding="utf-8")
