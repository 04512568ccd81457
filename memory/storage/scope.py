"""Scope: whose rows a storage call may see and where its writes go.

Every :class:`~memory.storage.protocol.StorageBackend` call takes one. A scope
reads its own namespace (the profile) and the shared namespaces it names (the
``system`` namespace holds documents added with ``mem add``); it writes to its
own namespace only. Writing into a shared namespace takes a scope whose
profile *is* that namespace (``Scope.of("system")``), so no call can write to
two namespaces or to one it was not opened for.
"""

from __future__ import annotations

from dataclasses import dataclass

SYSTEM = "system"


@dataclass(frozen=True)
class Scope:
    """A profile and the shared namespaces it may read."""

    profile: str
    shared: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.profile:
            raise ValueError("A scope needs a profile.")
        # The own namespace first, each once: backends bind these as parameters.
        shared = tuple(dict.fromkeys(s for s in self.shared if s and s != self.profile))
        object.__setattr__(self, "shared", shared)

    @classmethod
    def of(cls, profile: str, *, shared: tuple[str, ...] = (SYSTEM,)) -> Scope:
        """The usual scope: ``profile`` reading ``system`` too."""
        return cls(profile, shared)

    @property
    def readable(self) -> tuple[str, ...]:
        """Every namespace this scope reads, its own first."""
        return (self.profile, *self.shared)

    @property
    def writes(self) -> str:
        """The one namespace this scope writes to."""
        return self.profile

    def reads(self, namespace: str) -> bool:
        return namespace in self.readable
