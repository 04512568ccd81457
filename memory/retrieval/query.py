"""Query understanding: which words to look up, and which time is asked about.

A question such as "What did Priya bake on 4 March, 2021?" carries three
kinds of words. The topic words ("bake") go to BM25. The question words
("what", "did") and modal verbs match nothing useful and only add noise. The
date ("4 March, 2021") names *when*, not *what*: conversation turns rarely
spell out their own date, so it is taken out of the keyword query and used as a
time window that lifts memories created in it (see :mod:`memory.retrieval.ranking`).
Person names are resolved later, against the speakers in the database.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from memory.text import STOPWORDS, words

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
_HAS_YEAR = re.compile(r"\d{4}")


@functools.cache
def _date_patterns() -> tuple[re.Pattern[str], ...]:
    """ISO day, "13 October, 2023", "October 13, 2023", "October 2023", "2023".
    Compiled on first use: only queries with a four-digit number need them."""
    return (
        re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"),
        re.compile(
            rf"\b(\d{{1,2}}){_ORD}\s+(?:of\s+)?({_MONTH})\b\.?,?\s*(\d{{4}})\b", re.IGNORECASE
        ),
        re.compile(rf"\b({_MONTH})\b\.?\s+(\d{{1,2}}){_ORD},?\s*(\d{{4}})\b", re.IGNORECASE),
        re.compile(rf"\b({_MONTH})\b\.?,?\s+(\d{{4}})\b", re.IGNORECASE),
        re.compile(r"\b(19\d\d|20\d\d)\b"),
    )


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
    """A query split into keyword terms, an optional time window, and the kind
    of answer it asks for (see :func:`answer_kind`)."""

    text: str
    terms: tuple[str, ...]
    when: TimeWindow | None = None
    answer: str | None = None


def _day(year: int, month: int, day: int) -> TimeWindow | None:
    try:
        start = datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None
    return TimeWindow(start, start + timedelta(days=1), "day")


def find_time(text: str) -> tuple[TimeWindow | None, str]:
    """The first date, month or year named in ``text`` (most precise form
    first), and the text with that expression removed."""
    if not _HAS_YEAR.search(text):
        return None, text
    iso, day_month, month_day, month_year, year_only = _date_patterns()
    window: TimeWindow | None = None
    for pattern in (iso, day_month, month_day, month_year, year_only):
        match = pattern.search(text)
        if not match:
            continue
        groups = match.groups()
        if pattern is iso:
            window = _day(int(groups[0]), int(groups[1]), int(groups[2]))
        elif pattern is day_month:
            window = _day(int(groups[2]), _MONTHS[groups[1].lower()], int(groups[0]))
        elif pattern is month_day:
            window = _day(int(groups[2]), _MONTHS[groups[0].lower()], int(groups[1]))
        elif pattern is month_year:
            year, month = int(groups[1]), _MONTHS[groups[0].lower()]
            window = TimeWindow(
                datetime(year, month, 1, tzinfo=UTC),
                datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC),
                "month",
            )
        else:
            year = int(groups[0])
            window = TimeWindow(
                datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC), "year"
            )
        if window:
            return window, text[: match.start()] + " " + text[match.end() :]
    return None, text


def query_terms(text: str, *, fallback: bool = True) -> list[str]:
    """Distinct search terms in order: words split at apostrophes ("Priya's"
    is "priya"), without stop-words and question words. With ``fallback``,
    a query made only of such words keeps its non-stop-words, or else all."""
    parts = list(dict.fromkeys(p for w in words(text) for p in w.split("'") if p))
    topical = [p for p in parts if p not in STOPWORDS and p not in QUESTION_WORDS]
    if topical or not fallback:
        return topical
    return [p for p in parts if p not in STOPWORDS] or parts


# Answer kinds: a question's first words say what shape its answer has, and a
# memory that contains something of that shape is likelier to hold it (the
# classic answer-type filter of question answering). Only shapes that plain
# patterns recognise well are used.
_ASKS = (("how", "often"), ("how", "long"), ("how", "many"))
_NUMBER = (
    r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"hundred|a few|several|a couple|couple)"
)
_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_MONTH_NAMES = "january|february|march|april|june|july|august|september|october|november|december"
_ANSWERS = {
    "when": (
        r"\b(?:yesterday|today|tonight|tomorrow|ago|last|next|since|recently|weekend|"
        rf"this (?:week|month|year|weekend|morning)|{_WEEKDAYS}|{_MONTH_NAMES}|\d{{4}})\b"
    ),
    "how often": (
        r"\b(?:every|daily|weekly|monthly|always|usually|often|times? a|once|twice|each)\b"
    ),
    "how long": (
        rf"\b(?:{_NUMBER}\s+(?:years?|months?|weeks?|days?|hours?|minutes?)|since|ago|"
        r"for (?:a|the) (?:while|long))\b"
    ),
    "how many": rf"\b{_NUMBER}\b",
}


def answer_kind(text: str) -> str | None:
    """ "when", "how often", "how long" or "how many" when the query asks for
    a time, a frequency, a duration or a count; None otherwise."""
    tokens = words(text)
    if tokens[:1] == ["when"]:
        return "when"
    pairs = set(zip(tokens, tokens[1:], strict=False))
    return next((" ".join(pair) for pair in _ASKS if pair in pairs), None)


@functools.cache
def answer_pattern(kind: str) -> re.Pattern[str]:
    """What an answer of that kind looks like in a memory's text."""
    return re.compile(_ANSWERS[kind], re.IGNORECASE)


def parse_query(text: str) -> ParsedQuery:
    """Split a query into keyword terms, the time it names and the kind of
    answer it asks for."""
    when, rest = find_time(text)
    # "in May 2023" alone: the date is all there is to search for.
    terms = query_terms(rest, fallback=False) if when else []
    return ParsedQuery(text, tuple(terms or query_terms(text)), when, answer_kind(text))
