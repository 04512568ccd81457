"""Query understanding: which words to look up, and which time is asked about.

A question such as "What did Caroline paint on 13 October, 2023?" carries three
kinds of words. The topic words ("paint") go to BM25. The question words
("what", "did") and modal verbs match nothing useful and only add noise. The
date ("13 October, 2023") names *when*, not *what*: conversation turns rarely
spell out their own date, so it is taken out of the keyword query and used as a
time window that lifts memories created in it (see :mod:`memory.ranking`).
Person names are resolved later, against the speakers in the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .text import STOPWORDS, words

# Interrogatives and modal verbs beyond the stop-word list: part of how a
# question is asked, never of what it is about.
QUESTION_WORDS = frozenset(
    "what when where which who whom whose why how can may might must shall will "
    "ever kind type sort".split()
)

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ORD = r"(?:st|nd|rd|th)?"
_ISO_DAY = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_DAY_MONTH = re.compile(
    rf"\b(\d{{1,2}}){_ORD}\s+(?:of\s+)?({_MONTH})\b\.?,?\s*(\d{{4}})\b", re.IGNORECASE
)
_MONTH_DAY = re.compile(rf"\b({_MONTH})\b\.?\s+(\d{{1,2}}){_ORD},?\s*(\d{{4}})\b", re.IGNORECASE)
_MONTH_YEAR = re.compile(rf"\b({_MONTH})\b\.?,?\s+(\d{{4}})\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(19\d\d|20\d\d)\b")

# How far past the named period a memory still counts as "in" it: people talk
# about an event in the days after it ("last week I ..."), rarely before.
_SLACK_AFTER = {"day": timedelta(days=2), "month": timedelta(days=7), "year": timedelta(days=14)}
_SLACK_BEFORE = timedelta(days=1)


@dataclass(frozen=True)
class TimeWindow:
    """A period named in a query: a day, a month or a year (UTC)."""

    start: datetime
    end: datetime
    grain: str

    def covers(self, moment: datetime) -> bool:
        """Whether a memory made at ``moment`` is about this period."""
        return self.start - _SLACK_BEFORE <= moment < self.end + _SLACK_AFTER[self.grain]


@dataclass(frozen=True)
class ParsedQuery:
    """A query split into keyword terms and an optional time window."""

    text: str
    terms: tuple[str, ...]
    when: TimeWindow | None = None


def _day(year: int, month: int, day: int) -> TimeWindow | None:
    try:
        start = datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None
    return TimeWindow(start, start + timedelta(days=1), "day")


def find_time(text: str) -> tuple[TimeWindow | None, str]:
    """The first date, month or year named in ``text`` (most precise form
    first), and the text with that expression removed."""
    for pattern in (_ISO_DAY, _DAY_MONTH, _MONTH_DAY):
        match = pattern.search(text)
        if not match:
            continue
        a, b, c = match.groups()
        if pattern is _ISO_DAY:
            window = _day(int(a), int(b), int(c))
        elif pattern is _DAY_MONTH:
            window = _day(int(c), _MONTHS[b.lower()], int(a))
        else:
            window = _day(int(c), _MONTHS[a.lower()], int(b))
        if window:
            return window, text[: match.start()] + " " + text[match.end() :]
    match = _MONTH_YEAR.search(text)
    if match:
        year, month = int(match.group(2)), _MONTHS[match.group(1).lower()]
        start = datetime(year, month, 1, tzinfo=UTC)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        return TimeWindow(start, end, "month"), text[: match.start()] + " " + text[match.end() :]
    match = _YEAR.search(text)
    if match:
        year = int(match.group(1))
        window = TimeWindow(
            datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC), "year"
        )
        return window, text[: match.start()] + " " + text[match.end() :]
    return None, text


def query_terms(text: str) -> list[str]:
    """Distinct search terms in order: words split at apostrophes ("Caroline's"
    is "caroline"), without stop-words and question words. A query made only
    of such words falls back to its non-stop-words, then to all its words."""
    parts = list(dict.fromkeys(p for w in words(text) for p in w.split("'") if p))
    topical = [p for p in parts if p not in STOPWORDS and p not in QUESTION_WORDS]
    return topical or [p for p in parts if p not in STOPWORDS] or parts


def parse_query(text: str) -> ParsedQuery:
    """Split a query into keyword terms and the time it names, if any."""
    when, rest = find_time(text)
    terms = query_terms(rest)
    if not terms and when is not None:
        # "2023" alone: the date is all there is to search for.
        terms = query_terms(text)
    return ParsedQuery(text, tuple(terms), when)
