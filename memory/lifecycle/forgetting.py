"""Forgetting for real: the policy (what to select, the words to scrub, the
REPL history, the report). The deletion itself is the storage seam's
``StorageBackend.forget``, which follows lineage for every backend.

Over SQLite a forgotten memory is deleted from ``memories``, from the FTS5 index (which
runs with ``secure-delete`` and is then optimised) and from
both vector tables (vec0 zeroes a deleted vector's slot); ``secure_delete`` is
on, so SQLite zeroes the freed pages; earlier audit rows of that memory lose
their text; and the WAL is checkpointed and truncated, because old frames of
the WAL file would otherwise still hold the text.

Forgetting follows lineage (DESIGN.md, "Scope and lineage"): a message memory
is the index row of a message, so forgetting it deletes the message; a deleted
message takes with it every row derived from it (facts and fact keys whose
source it is, summary and episode rows of its conversation) and the running
summary of its conversation when that summary folded it in. Summaries are
dropped, not regenerated (that needs a model): the next turn folds the turns
that are left into a new one. With ``--query`` the words are also scrubbed
from places without lineage: other summaries, conversation titles and audit
text. The REPL history loses the matching entries (memory.privacy.history).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memory import timeutil
from memory.errors import UsageError
from memory.privacy import history
from memory.records import Memory
from memory.storage import MemoryFilter
from memory.text import content_words, matches_words, stem

if TYPE_CHECKING:
    from memory.store import MemoryStore


@dataclass
class ForgetReport:
    """What a forget touched, for the receipt and ``--json``."""

    memories: list[int] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    derived: list[int] = field(default_factory=list)
    restored: list[int] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    events: int = 0
    history: int = 0
    scrub_pending: bool = False
    scrub_hint: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "forgotten": self.memories,
            "messages": self.messages,
            "derived": self.derived,
            "restored": self.restored,
            "summaries": self.summaries,
            "titles": self.titles,
            "events": self.events,
            "history": self.history,
            "scrub_pending": self.scrub_pending,
            **({"scrub_hint": self.scrub_hint} if self.scrub_hint else {}),
            "notes": self.notes,
        }


@dataclass(frozen=True)
class WordScrub:
    """The words of ``--query``, as the backend's scrub of copies that keep no
    lineage (summaries, titles, audit text). ``needles`` are the ASCII
    prefixes the stems share with the words, for the backend's cheap
    substring test before a text is split into words."""

    terms: tuple[str, ...]
    needles: tuple[str, ...]

    @classmethod
    def of(cls, terms: list[str]) -> WordScrub:
        prefixes = (os.path.commonprefix([t, stem(t)]) for t in terms)
        return cls(tuple(terms), tuple(p for p in prefixes if p.isascii()))

    def __call__(self, text: str) -> bool:
        return matches_words(text, list(self.terms))


def forget(
    store: MemoryStore,
    ids: list[int],
    *,
    with_source: bool = False,
    query: str | None = None,
) -> ForgetReport:
    """Delete memories (and with ``with_source`` the messages they came from),
    everything derived from a deleted message, and with ``query`` every copy
    of its words in summaries, titles, audit text and the REPL history."""
    if not ids:
        raise UsageError("Nothing to forget: give memory ids, --query or --older-than.")
    terms = _terms(query)
    result = store.backend.forget(
        store.scope,
        ids,
        with_source=with_source,
        scrub=WordScrub.of(terms) if terms else None,
    )
    report = ForgetReport(
        memories=result.memories,
        messages=result.messages,
        derived=result.derived,
        restored=result.restored,
        summaries=result.summaries,
        titles=result.titles,
        events=result.events,
        scrub_pending=result.scrub_pending,
        scrub_hint=result.scrub_hint,
    )
    where = history.path_for(store.path, store.profile)
    try:
        report.history = history.scrub(where, result.texts, terms)
    except OSError as err:
        report.notes.append(
            f"could not scrub the input history {where} ({err.strerror}): make it writable "
            "and forget again, or delete it"
        )
    return report


def _terms(query: str | None) -> list[str]:
    if not query:
        return []
    return [w.casefold() for w in (content_words(query) or query.split())]


def select_by_query(store: MemoryStore, query: str, *, kind: str | None = None) -> list[Memory]:
    """Memories of this profile containing every content word of ``query``.

    Forgetting is destructive, so this matches precisely (all words, stemmed)
    rather than by the fuzzy ranking of ``search``.
    """
    terms = content_words(query) or query.split()
    if not terms:
        raise UsageError("Empty --query: give the words the memories to forget contain.")
    filters = MemoryFilter(kinds=(kind,) if kind else (), include_inactive=True)
    ids = store.backend.keyword_match(store.scope, terms, filters)
    return store.backend.memories(store.scope, ids)


def select_older_than(store: MemoryStore, age: str, *, kind: str | None = None) -> list[Memory]:
    """Memories of this profile created longer than ``age`` (e.g. ``90d``) ago."""
    cutoff = timeutil.to_iso(timeutil.now() - timeutil.parse_duration(age))
    ids = store.backend.memory_ids(store.scope, kind=kind, before=cutoff)
    return store.backend.memories(store.scope, ids)
