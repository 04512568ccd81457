"""The store: the engine's storage API (:class:`MemoryStore`) over the storage seam."""

from __future__ import annotations

from memory.store.base import storable_id
from memory.store.core import MemoryStore, Progress

__all__ = ["MemoryStore", "Progress", "storable_id"]
