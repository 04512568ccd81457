"""Records of the seam's transfer calls (``mem export`` / ``mem import``): a
message with the fields only a transfer needs, and the stored times of a
memory that an import restores as the export wrote them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StoredMessage:
    """A message with everything an export writes."""

    id: int
    conversation: str
    role: str
    content: str
    created_at: str
    speaker: str | None
    external_id: str | None
    import_key: str | None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MemoryTimes:
    """What an import restores of a memory after adding it. ``updated_at`` and
    ``valid_from`` None keep what the add stored; the others are set as given."""

    updated_at: str | None = None
    last_used_at: str | None = None
    use_count: int = 0
    valid_from: str | None = None
    valid_until: str | None = None
    expires_at: str | None = None
