"""The REPL's input history: private, gated, forgettable.

The history is a copy of everything typed at the ``you>`` prompt, so it gets
the rules of the database: the file is created 0600 (and an older, looser one
is tightened), each entry passes the secret gate before it is written (a
refused entry is not written at all), ``forget`` removes the entries holding
the forgotten text (``scrub``), and next to an encrypted database there is no
history file at all (``is_encrypted``: the REPL keeps it in memory only).

The file keeps prompt-toolkit's ``FileHistory`` format (``# date`` then one
``+line`` per line of the entry), so existing files load unchanged. Each
profile has its own file: one profile's REPL must not recall another's input.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from memory.config import DEFAULT_PROFILE
from memory.errors import SecretRefusedError
from memory.privacy.secrets_gate import apply, scan
from memory.text import matches_words

_COMMAND = re.compile(r"^/(?:remember|instruct)\s+", re.IGNORECASE)


def path_for(db_path: Path, profile: str) -> Path:
    """The history file of ``profile``, next to the database."""
    name = "history" if profile == DEFAULT_PROFILE else f"history-{profile}"
    return Path(db_path).parent / name


def is_encrypted(conn: Any) -> bool:
    """True for a SQLCipher connection. Asked of the open connection, not the
    file: opening and closing the file in this process would drop the POSIX
    locks SQLite holds on it, and a concurrent writer could then corrupt it."""
    # The class may be a subclass made for ``factory=`` (memory.storage.sqlite.filelock.releasing).
    return any(c.__module__.split(".")[0] == "sqlcipher3" for c in type(conn).__mro__)


def gate(text: str, policy: str) -> str | None:
    """The entry as it may be stored: redacted, or None when refused."""
    try:
        return apply(text, policy).text
    except SecretRefusedError:
        return None


def load(path: Path) -> list[str]:
    """Entries, oldest first."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    entries: list[str] = []
    lines: list[str] = []
    for line in raw.decode("utf-8", errors="replace").splitlines(keepends=True):
        if line.startswith("+"):
            lines.append(line[1:])
        else:
            if lines:
                entries.append("".join(lines).removesuffix("\n"))
            lines = []
    if lines:
        entries.append("".join(lines).removesuffix("\n"))
    return entries


def _format(entry: str, stamp: str | None = None) -> str:
    stamp = stamp or str(datetime.datetime.now())
    return f"\n# {stamp}\n" + "".join(f"+{line}\n" for line in entry.split("\n"))


def _private(path: Path, flags: int) -> int:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, flags | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)  # a file made by an older mem was 0644
    return fd


def append(path: Path, text: str, policy: str) -> str | None:
    """Gate ``text`` and append it; returns what was stored (None: nothing)."""
    entry = gate(text, policy)
    if entry is None:
        return None
    fd = _private(path, os.O_WRONLY | os.O_APPEND)
    with os.fdopen(fd, "ab") as handle:
        handle.write(_format(entry).encode("utf-8", errors="replace"))
    return entry


def _key(text: str) -> str:
    """Entries and forgotten texts compare after the gate, case and spaces."""
    return " ".join(scan(_COMMAND.sub("", text.strip())).text.casefold().split())


def scrub(path: Path, texts: Iterable[str], terms: list[str]) -> int:
    """Rewrite the history without the entries that are (or, for ``/remember``,
    hold) one of ``texts``, or that hold every word of ``terms``; returns how
    many were removed. The new file replaces the old one atomically."""
    entries = load(path)
    if not entries:
        return 0
    keys = {_key(t) for t in texts if t.strip()}
    kept = [e for e in entries if _key(e) not in keys and not matches_words(e, terms)]
    removed = len(entries) - len(kept)
    if removed:
        tmp = path.with_name(path.name + ".tmp")
        fd = _private(tmp, os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(fd, "wb") as handle:
            handle.write("".join(_format(e, "kept") for e in kept).encode("utf-8"))
        os.replace(tmp, path)
    return removed


def _looks_like_history(path: Path) -> bool:
    """Only mem's own format is ever deleted: the folder of a ``--db`` may hold
    an unrelated file called ``history``."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return False
    return all(not line or line[:1] in (b"#", b"+") for line in lines)


def remove(path: Path) -> bool:
    """Delete a history file (an encrypted database keeps none)."""
    if not path.is_file() or not _looks_like_history(path):
        return False
    path.unlink(missing_ok=True)
    return True


def drop_plaintext(db_path: Path, encrypted: bool) -> int:
    """Next to an encrypted database, delete the plaintext history files (of
    every profile) that a REPL wrote before it was encrypted."""
    if not encrypted:
        return 0
    folder = Path(db_path).parent
    return sum(remove(p) for p in [folder / "history", *folder.glob("history-*")])
