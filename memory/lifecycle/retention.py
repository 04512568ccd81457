"""Retention: per-kind age limits, and memories past their ``expires_at``.

The config file names a limit per kind (``[retention] message = "365d"``,
``fact = "never"``). ``message`` covers the conversation log itself: a message
past the limit is deleted with its search entry; what was derived from it
(facts, summaries, episodes) keeps a limit of its own. Purging is the storage
seam's ``expire``, the same deletion as ``mem forget``, so nothing of the text
is left in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from memory import timeutil
from memory.errors import ConfigError
from memory.records import KINDS

if TYPE_CHECKING:
    from memory.store import MemoryStore

NEVER = ("never", "forever", "0", "")


@dataclass
class PruneReport:
    counts: dict[str, int] = field(default_factory=dict)
    dry_run: bool = True

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def parse_policy(raw: dict[str, str]) -> dict[str, str | None]:
    """Validate ``[retention]``: kind → cutoff ISO time (None = keep forever)."""
    policy: dict[str, str | None] = {}
    for kind, value in raw.items():
        if kind not in KINDS:
            raise ConfigError(
                f"Unknown kind {kind!r} in [retention]: use one of {', '.join(KINDS)}."
            )
        if value.strip().lower() in NEVER:
            policy[kind] = None
            continue
        try:
            age = timeutil.parse_duration(value)
        except Exception:
            raise ConfigError(
                f"Invalid retention {value!r} for {kind}: use a duration such as 365d, or never."
            ) from None
        policy[kind] = timeutil.to_iso(timeutil.now() - age)
    return policy


def prune(store: MemoryStore, retention: dict[str, str], *, dry_run: bool = True) -> PruneReport:
    """Delete (or with ``dry_run`` only count) what the policy says has expired."""
    policy = parse_policy(retention)
    report = PruneReport(dry_run=dry_run)
    backend, scope = store.backend, store.scope
    memory_ids: dict[str, list[int]] = {}
    message_ids: list[int] = []
    for kind, cutoff in policy.items():
        if cutoff is None:
            continue
        if kind == "message":
            message_ids = backend.message_ids(scope, before=cutoff)
            report.counts["message"] = len(message_ids)
            continue
        memory_ids[kind] = backend.memory_ids(scope, kind=kind, before=cutoff)
    expired = backend.expired_ids(scope, timeutil.now_iso())
    for kind, ids in memory_ids.items():
        report.counts[kind] = len(ids)
    seen = {i for ids in memory_ids.values() for i in ids}
    extra = [i for i in expired if i not in seen]
    if extra:
        report.counts["expired"] = len(extra)
    report.counts = {k: v for k, v in report.counts.items() if v}
    if dry_run or not report.total:
        return report
    backend.expire(scope, [*seen, *extra], message_ids)
    backend.scrub(scope)
    return report
