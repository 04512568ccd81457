"""Timestamps, dates and durations as people type them.

All stored times are ISO 8601 strings in UTC with an explicit offset
(``2024-05-01T13:56:00+00:00``) so that SQL string comparison orders them.
Naive input times are taken as UTC: imported logs carry no zone, and treating
them as local time would shift them by the machine's offset.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from memory.errors import UsageError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|min|h|d|w|m|mo|y)\s*$", re.IGNORECASE)
_UNIT_DAYS = {"d": 1.0, "w": 7.0, "m": 30.0, "mo": 30.0, "y": 365.0}
MAX_DURATION = timedelta(days=365_000)  # 1000y: "that long ago" stays a real date


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def to_iso(moment: datetime) -> str:
    """Canonical stored form: UTC, seconds precision, explicit offset."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def now_iso() -> str:
    return to_iso(now())


def from_iso(text: str) -> datetime:
    """Parse a stored or imported timestamp; naive values are UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def parse_duration(text: str) -> timedelta:
    """``90d``, ``2w``, ``6m`` (months of 30 days), ``1y``, ``12h``, ``30min``."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(
            f"Invalid duration {text!r}: use a number and a unit, such as 90d, 2w, 6m or 1y."
        )
    amount = float(match.group(1))
    unit = match.group(2).lower()
    seconds = {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0}.get(unit)
    days = amount * (seconds / 86400 if seconds else _UNIT_DAYS[unit])
    if days > MAX_DURATION.days:
        raise UsageError(f"Invalid duration {text!r}: use at most 1000y.")
    return timedelta(days=days)


def parse_when(text: str, *, reference: datetime | None = None) -> datetime:
    """A point in time from a date, a datetime, ``today``, ``yesterday`` or a
    duration meaning "that long ago" (``7d``)."""
    ref = reference or now()
    cleaned = text.strip().lower()
    if cleaned == "now":
        return ref
    if cleaned in ("today", "yesterday"):
        day = ref.date() - timedelta(days=1 if cleaned == "yesterday" else 0)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    if _DURATION.match(cleaned):
        return ref - parse_duration(cleaned)
    try:
        moment = from_iso(text)
        moment.astimezone(UTC)  # a date that cannot be stored raises OverflowError here
        return moment
    except (ValueError, OverflowError):
        pass
    try:
        day = date.fromisoformat(text.strip())
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    except ValueError:
        raise UsageError(
            f"Invalid date {text!r}: use YYYY-MM-DD, an ISO datetime, 'yesterday' "
            "or a duration such as 7d."
        ) from None


def normalise_timestamp(text: str) -> str:
    """Turn an imported timestamp into the stored form, or raise ValueError."""
    return to_iso(from_iso(text))
