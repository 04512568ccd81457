"""The storage seam: the :class:`StorageBackend` protocol, :class:`Scope` and
the records that cross it. Backends: :mod:`memory.storage.sqlite`,
:mod:`memory.storage.postgres` (imported only when opened)."""

from __future__ import annotations

from memory.storage.protocol import StorageBackend
from memory.storage.records import (
    Conversation,
    Counts,
    Document,
    DocumentInfo,
    ForgetResult,
    KeywordStats,
    Lineage,
    MemoryBrief,
    MemoryFilter,
    MemoryPatch,
    NewEvent,
    NewMemory,
    NewMessage,
)
from memory.storage.scope import SYSTEM, Scope

__all__ = [
    "SYSTEM",
    "Conversation",
    "Counts",
    "Document",
    "DocumentInfo",
    "ForgetResult",
    "KeywordStats",
    "Lineage",
    "MemoryBrief",
    "MemoryFilter",
    "MemoryPatch",
    "NewEvent",
    "NewMemory",
    "NewMessage",
    "Scope",
    "StorageBackend",
]
