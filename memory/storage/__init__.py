"""The storage seam: the :class:`StorageBackend` protocol, :class:`Scope` and
the records that cross it. Backends: :mod:`memory.storage.sqlite`,
:mod:`memory.storage.postgres` (imported only when opened)."""

from __future__ import annotations

from .protocol import StorageBackend
from .records import (
    Conversation,
    Counts,
    Document,
    DocumentInfo,
    ForgetResult,
    KeywordStats,
    Lineage,
    MemoryFilter,
    MemoryPatch,
    NewEvent,
    NewMemory,
    NewMessage,
)
from .scope import SYSTEM, Scope

__all__ = [
    "SYSTEM",
    "Conversation",
    "Counts",
    "Document",
    "DocumentInfo",
    "ForgetResult",
    "KeywordStats",
    "Lineage",
    "MemoryFilter",
    "MemoryPatch",
    "NewEvent",
    "NewMemory",
    "NewMessage",
    "Scope",
    "StorageBackend",
]
