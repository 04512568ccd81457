"""What a search considers, as the user names it: kinds, a period, a
conversation, metadata (``--where``). Validated here into the seam's
:class:`~memory.storage.records.MemoryFilter`, which the backend applies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from memory import timeutil
from memory.errors import UsageError
from memory.records import KINDS
from memory.storage.records import MemoryFilter

# A search's filters are the storage seam's record (the name searches have always used).
Filters = MemoryFilter

WHERE_HELP = "use KEY=VALUE, KEY~=VALUE (contains) or KEY!=VALUE, e.g. --where path~=docs/"


def _where_key(key: str) -> str:
    if not key.isidentifier():
        raise UsageError(f"Invalid metadata key {key!r} in --where: {WHERE_HELP}.")
    return key


def parse_where(term: str | tuple[str, str, str]) -> tuple[str, str, str]:
    """``KEY=VALUE``, ``KEY~=VALUE`` or ``KEY!=VALUE`` as a (key, op, value) filter."""
    if isinstance(term, tuple):
        key, op, value = term
    else:
        at = term.find("=")
        if at < 1:
            raise UsageError(f"Invalid --where {term!r}: {WHERE_HELP}.")
        op = term[at - 1 : at + 1] if term[at - 1] in "~!" else "="
        key, value = term[: at + 1 - len(op)].strip(), term[at + 1 :]
    if op not in ("=", "~=", "!="):
        raise UsageError(f"Invalid --where operator {op!r}: {WHERE_HELP}.")
    return _where_key(key), op, value


def make_filters(
    *,
    kinds: str | tuple[str, ...] | list[str] | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    conversation: str | None = None,
    include_inactive: bool = False,
    where: Sequence[str | tuple[str, str, str]] | None = None,
) -> MemoryFilter:
    """Validate user-facing filter values into a :class:`MemoryFilter`."""
    if isinstance(kinds, str):
        kinds = (kinds,)
    kinds = tuple(kinds or ())
    for kind in kinds:
        if kind not in KINDS:
            raise UsageError(f"Unknown kind {kind!r}: use one of {', '.join(KINDS)}.")

    def when(value: str | datetime | None) -> str | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return timeutil.to_iso(value)
        return timeutil.to_iso(timeutil.parse_when(value))

    terms = tuple(parse_where(t) for t in (where or ()))
    return MemoryFilter(
        kinds, when(since), when(until), conversation, include_inactive, where=terms
    )
