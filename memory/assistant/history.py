"""The chat's input history as a client keeps it: one object over
:mod:`memory.privacy.history` for the open database, so a REPL never handles
paths, secret policies or the encrypted-database rule itself."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from memory.privacy import history

if TYPE_CHECKING:
    from memory.store import MemoryStore


class InputHistory:
    """What was typed at the prompt, gated and private (see memory.privacy.history).

    ``kept`` is False next to an encrypted database: nothing is written, and
    ``removed_plaintext`` says an older plaintext file was deleted on opening."""

    def __init__(self, path: Path, policy: str, *, kept: bool = True) -> None:
        self.path = path
        self.policy = policy
        self.kept = kept
        self.removed_plaintext = False

    @classmethod
    def for_store(cls, store: MemoryStore) -> InputHistory:
        path = history.path_for(Path(store.path), store.profile)
        if not store.backend.encrypted:
            return cls(path, store.secrets)
        inputs = cls(path, store.secrets, kept=False)
        inputs.removed_plaintext = history.remove(path)
        return inputs

    def load(self) -> list[str]:
        """Entries, oldest first (none when not kept)."""
        return history.load(self.path) if self.kept else []

    def gate(self, text: str) -> str | None:
        """The entry as it may be kept: redacted, or None when refused."""
        return history.gate(text, self.policy)

    def append(self, text: str) -> None:
        """Write one entry (gated again); an OSError (a full disk) is the caller's to report."""
        if self.kept:
            history.append(self.path, text, self.policy)
