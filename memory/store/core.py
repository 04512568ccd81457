"""MemoryStore: the engine's storage API over the storage seam.

Each memory lives in three places that must agree: its row, its keyword
entry and its vectors. The backend writes and deletes all three together,
inside one transaction; the store adds the policy above (the secret gate,
validation, the audit trail in ``memory_events``, embedding before any
write lock) and hands every call the scope of its profile.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from memory.config import DEFAULT_PROFILE
from memory.errors import EmbedderMismatchError, UsageError
from memory.models.embed import Embedder, get_embedder
from memory.privacy.secrets_gate import POLICIES
from memory.records import KINDS, Event, Memory
from memory.storage.records import MemoryFilter
from memory.store.conversations import Conversations

# (done, total) after each batch of a long operation (reindex).
Progress = Callable[[int, int], None]


class MemoryStore(Conversations):
    """The engine's storage API. Open with :meth:`open`; close when done."""

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        embedder: str | None = None,
        profile: str | None = None,
        allow_embedder_change: bool = False,
        secrets: str = "redact",
    ) -> MemoryStore:
        """Open (creating) the database and check its embedder.

        ``embedder`` None means "whatever the database was built with" (the
        default embedder for a new file); naming a different one is an error
        that points at ``mem reindex`` unless ``allow_embedder_change``.
        """
        from memory.config import db_target, server_home, validate_profile
        from memory.plugins import storage_backend
        from memory.privacy.history import drop_plaintext

        chosen_profile = validate_profile(profile or DEFAULT_PROFILE)
        if secrets not in POLICIES:
            raise UsageError(f"Unknown secrets policy {secrets!r}: use redact, refuse or allow.")
        target = db_target(path)
        picked: list[Embedder] = []

        def pick(stored_name: str | None, stored_dim: int | None) -> Embedder:
            if embedder is None:
                chosen = get_embedder(stored_name, dim=stored_dim)
            else:
                chosen = get_embedder(embedder)
                if stored_name and chosen.name != stored_name and not allow_embedder_change:
                    raise EmbedderMismatchError(
                        f"This database's vectors were built with {stored_name}, not "
                        f"{chosen.name}: run `mem reindex --embedder {embedder}` to rebuild "
                        "them, or drop the embedder setting."
                    )
            picked.append(chosen)
            return chosen

        if isinstance(target, str):  # a postgresql:// URL: the server backend
            backend = storage_backend("postgres")(
                target, pick=pick, allow_embedder_change=allow_embedder_change
            )
            home = server_home(target)
            store = cls(backend, home / "mem.db", picked[-1], chosen_profile, secrets=secrets)
            store.url = target
            return store
        backend = storage_backend("sqlite")(
            target, pick=pick, allow_embedder_change=allow_embedder_change
        )
        store = cls(backend, target, picked[-1], chosen_profile, secrets=secrets)
        try:
            drop_plaintext(
                target, store.backend.encrypted
            )  # an encrypted database keeps no plaintext history
        except BaseException:
            store.close()
            raise
        return store

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ audit
    def history(self, memory_id: int) -> list[Event]:
        """Audit events of a memory (a forgotten one's events carry no text).

        A forgotten memory is known by the profile its ``forget`` event names;
        one forgotten before events named it is no one's to show."""
        return self.backend.events(self.scope, memory_id)

    def last_change(self) -> Event | None:
        """The newest undoable event of this profile (for ``/undo``)."""
        found = self.backend.last_events(self.scope, events=("add", "update", "supersede"))
        return found[0] if found else None

    def event(self, event_id: int) -> Event | None:
        return self.backend.event(self.scope, event_id)

    # --------------------------------------------------------------- reading
    def list_memories(
        self,
        *,
        kind: str | None = None,
        include_inactive: bool = False,
        limit: int | None = None,
        conversation: str | None = None,
    ) -> list[Memory]:
        if kind and kind not in KINDS:
            raise UsageError(f"Unknown kind {kind!r}: use one of {', '.join(KINDS)}.")
        filters = MemoryFilter(
            kinds=(kind,) if kind else (),
            conversation=conversation or None,
            include_inactive=include_inactive,
        )
        return self.backend.list_memories(self.scope, filters, limit=limit)

    def stats(self) -> dict[str, Any]:
        counts = self.backend.counts(self.scope)
        kinds = {k: {"active": a, "inactive": i} for k, (a, i) in counts.kinds.items()}
        size = 0
        if self.url is None:
            size = sum(
                os.path.getsize(p)
                for p in (str(self.path), f"{self.path}-wal", f"{self.path}-shm")
                if os.path.exists(p)
            )
        return {
            "path": self.location,
            "profile": self.profile,
            "kinds": kinds,
            "memories": sum(v["active"] + v["inactive"] for v in kinds.values()),
            "messages": counts.messages,
            "conversations": counts.conversations,
            "size_bytes": size,
            "embedder": self.meta("embedder"),
            "embedder_dim": int(self.meta("embedder_dim") or 0),
            "schema_version": int(self.meta("schema_version") or 0),
        }

    # ---------------------------------------------------------------- reindex
    def reindex(self, *, progress: Progress | None = None, batch: int = 256) -> int:
        """Rebuild every vector with the current embedder (after a change);
        an interrupted reindex changes nothing and the next one resumes."""
        return self.backend.reindex(
            self.scope,
            self.embedder.name,
            self.embedder.dim,
            self.embedder.embed,
            progress=progress,
            batch=batch,
        )
