"""Episodes: a conversation's session remembered as one event (when, who, gist).

A session is a run of messages with no idle gap longer than :data:`IDLE_GAP` between two
of them (an imported conversation's days fall apart on their own; a chat that pauses for
hours becomes two episodes). An episode carries a title, its time span, its participants,
a gist, the decisions and the open questions, and the ids of its messages (its lineage).

Offline, the episode is built by extraction, a stated method and no model:

* **term weights**: each content word (stop-words out, light stem) weighs its count in the
  session times ``log(1 + sessions / sessions using it)`` over the conversation's sessions,
  so what this session talks about counts, not what every session says;
* **gist**: the sentences with the highest sum of their distinct terms' weights, divided by
  the square root of their length in terms (long sentences do not win by length alone),
  up to :data:`GIST_SENTENCES`, shown in the order they were said, with their speaker;
* **entities**: capitalised words that do not start a sentence, and **dates** named in the
  text (weekdays, months, "yesterday", "last week", numbers with a month);
* **decisions**: sentences that commit to something ("decided", "will", "going to",
  "let's", "plan to", "agreed"); **open questions**: questions nobody answered, i.e. in
  the session's last two turns, or that no later turn of another speaker shares a word with;
* **title**: the session's top entities and terms; **topics**: its top terms.

The text that is indexed and shown is the title, the date and the gist; everything else sits
in the memory's metadata. A model, when configured, writes the same fields instead
(:mod:`memory.formation.episode_model`). Never empty: a session of greetings still has a
title of its speakers and its first sentence as gist.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from memory import timeutil
from memory.records import Message
from memory.text import STOPWORDS, stem, words

IDLE_GAP = timedelta(hours=2)  # a pause longer than this ends a session
GIST_SENTENCES = 5
TOPICS = 12
TITLE_TERMS = 4
MAX_ITEMS = 5  # decisions and open questions kept
METHOD = "extractive-v1"

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_CAPITAL = re.compile(
    r"\b[A-Z][\w'’-]*[a-z][\w'’-]*(?:\s+(?:of\s+|of\s+the\s+|the\s+)?[A-Z][\w'’-]*[a-z][\w'’-]*)*"
)
_DATE = re.compile(
    r"\b(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day|yesterday|today|tomorrow|tonight|"
    r"(?:last|next|this) (?:week|month|year|weekend|summer|winter|spring|fall)|"
    r"(?:\d{1,2} )?(?:january|february|march|april|may|june|july|august|september|october|"
    r"november|december|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\.?(?: \d{1,2})?"
    r"(?:,? \d{4})?|\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}(?:/\d{2,4})?)\b",
    re.IGNORECASE,
)
_DECISION = re.compile(
    r"\b(?:decided|decide|decision|agreed|agree|we'll|i'll|we will|i will|going to|gonna|"
    r"plan to|planning to|let's|settled on|chose|choose|booked|signed up)\b",
    re.IGNORECASE,
)
_DELIBERATE = re.compile(r"\b(?:should|whether|which|not sure|or not)\b", re.IGNORECASE)
_VERBS = frozenset(
    "build bring take make go went come came see saw get give gave keep put try tell told say "
    "said want need use help start find found look feel felt think know along".split()
)
# Words that are capitalised but name nobody: sentence openers, pronouns, interjections.
_NOT_NAMES = frozenset(
    "i im i'm ive i've id i'd ill i'll hey hi hello hmm oh ok okay yes yeah yep no nope wow "
    "thanks thank sure great cool awesome nice good well so and but or the a an that this "
    "bye woah whoa congrats congratulations see omg haha lol yay aww hmm ugh one two "
    "it its it's my your our what when where who why how".split()
)
# Words that carry no topic in chat: they never make a title or a topic.
_CHATTER = _NOT_NAMES | frozenset(
    "really pretty lot thing things stuff wow awesome amazing glad love lovely photo shares "
    "sounds looks feel feeling know think see good great cool nice yeah totally".split()
)


@dataclass
class EpisodeDraft:
    """What an episode says, before it is stored."""

    title: str
    start: str
    end: str
    participants: list[str]
    gist: list[str]
    decisions: list[str] = field(default_factory=list)
    open_questions: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)
    method: str = METHOD

    def content(self) -> str:
        """The indexed and shown text: title, day, participants and gist."""
        day = self.start[:10]
        who = ", ".join(self.participants)
        head = f"{self.title} ({day}{', ' + who if who else ''})"
        return "\n".join([head, *self.gist]).strip()

    def metadata(self, conversation: str) -> dict[str, Any]:
        return {
            "title": self.title,
            "conversation": conversation,
            "start": self.start,
            "end": self.end,
            "participants": self.participants,
            "decisions": self.decisions,
            "open_questions": self.open_questions,
            "topics": self.topics,
            "entities": self.entities,
            "dates": self.dates,
            "message_ids": self.message_ids,
            "method": self.method,
        }


def sessions(messages: Sequence[Message], gap: timedelta = IDLE_GAP) -> list[list[Message]]:
    """Consecutive runs of ``messages`` (in order) with no pause longer than ``gap``."""
    out: list[list[Message]] = []
    last = None
    for msg in messages:
        at = timeutil.from_iso(msg.created_at)
        if last is None or at - last > gap or not out:
            out.append([])
        out[-1].append(msg)
        last = at
    return [s for s in out if s]


def terms(text: str) -> list[str]:
    """The topic words of ``text``, stemmed (what the term weights count)."""
    return [stem(w) for w in words(text) if w not in STOPWORDS and len(w) > 2 and w.isalpha()]


def session_frequencies(groups: Iterable[Sequence[Message]]) -> tuple[Counter[str], int]:
    """In how many sessions each term occurs, and how many sessions there are."""
    df: Counter[str] = Counter()
    n = 0
    for group in groups:
        n += 1
        df.update({t for m in group for t in terms(m.content)})
    return df, n


def _speaker(msg: Message) -> str:
    return msg.speaker or msg.role


def _sentences(group: Sequence[Message]) -> list[tuple[int, Message, str]]:
    """(turn index, message, sentence) for every sentence of the session."""
    out = []
    for i, msg in enumerate(group):
        for piece in _SENTENCE.split(msg.content):
            piece = piece.strip()
            if piece:
                out.append((i, msg, piece))
    return out


def _entities(sentences: Sequence[tuple[int, Message, str]], people: set[str]) -> list[str]:
    counts: Counter[str] = Counter()
    for _, _, sentence in sentences:
        for match in _CAPITAL.finditer(sentence):
            parts = match.group(0).split()
            at_start = match.start() == 0
            while parts and parts[0].casefold().strip("'’") in _NOT_NAMES:
                parts, at_start = parts[1:], False  # "Hey Caroline": the name is Caroline
            cut = [i for i, w in enumerate(parts) if w.casefold().strip("'’") in _NOT_NAMES]
            parts = parts[: cut[0]] if cut else parts  # "Sometimes I'm": no name
            name = " ".join(parts)
            name = name[:-2] if name.endswith(("'s", "’s")) else name.rstrip("'’")
            low = name.casefold()
            if not name or (at_start and len(parts) == 1) or low in _NOT_NAMES:
                continue
            if any(p.startswith(low) for p in people):
                continue
            counts[name] += 1
    return [w for w, _ in counts.most_common(8)]


def extract(
    group: Sequence[Message],
    df: Mapping[str, int] | None = None,
    n_sessions: int = 1,
) -> EpisodeDraft:
    """An episode of one session by extraction (see the module docstring)."""
    if not group:
        raise ValueError("an episode needs at least one message")
    df = df or {}
    sentences = _sentences(group)
    tf: Counter[str] = Counter(t for _, _, s in sentences for t in terms(s))
    weight = {t: c * math.log(1 + max(n_sessions, 1) / max(df.get(t, 1), 1)) for t, c in tf.items()}

    def score(sentence: str) -> float:
        found = set(terms(sentence))
        if not found:
            return 0.0
        return sum(weight.get(t, 0.0) for t in found) / math.sqrt(len(terms(sentence)))

    ranked = sorted(range(len(sentences)), key=lambda i: (-score(sentences[i][2]), i))
    chosen = sorted(i for i in ranked[:GIST_SENTENCES] if score(sentences[i][2]) > 0)
    if not chosen:
        chosen = [0]
    gist = [f"{_speaker(sentences[i][1])}: {sentences[i][2]}" for i in chosen]
    participants = list(dict.fromkeys(_speaker(m) for m in group))
    people = {p.casefold() for p in participants}
    entities = _entities(sentences, people)
    # A topic is shown by its most frequent surface form, not its stem.
    surface: dict[str, Counter[str]] = {}
    for _, _, s in sentences:
        for w in words(s):
            if w not in STOPWORDS and len(w) > 2 and w.isalpha():
                surface.setdefault(stem(w), Counter())[w] += 1
    top = sorted(weight, key=lambda t: (-weight[t], t))
    topics = [surface[t].most_common(1)[0][0] for t in top[: TOPICS * 2] if t in surface]
    topics = [t for t in topics if t not in people and t not in _CHATTER]
    topics = topics[:TOPICS]
    seen: dict[str, str] = {}
    for word in [*entities[:2], *[t for t in topics if _namelike(t)]]:
        seen.setdefault(stem(word.casefold()), word)
    title_words = list(seen.values())[:TITLE_TERMS]
    title = ", ".join(title_words) if title_words else " and ".join(participants)
    dates = list(dict.fromkeys(m.group(0) for _, _, s in sentences for m in _DATE.finditer(s)))[
        :MAX_ITEMS
    ]
    decisions = [
        f"{_speaker(msg)}: {s}" for _, msg, s in sentences if _DECISION.search(s) and "?" not in s
    ]
    return EpisodeDraft(
        title=title[:1].upper() + title[1:],
        start=group[0].created_at,
        end=group[-1].created_at,
        participants=participants,
        gist=gist,
        decisions=_best(decisions, score),
        open_questions=_best(_open_questions(group, sentences), score),
        topics=topics,
        entities=entities,
        dates=dates,
        message_ids=[m.id for m in group],
    )


def _namelike(word: str) -> bool:
    """Whether a topic word can name a title: verbs and adverbs by their common endings
    ("looked", "quickly") and a few frequent verbs do not."""
    return not word.endswith(("ed", "ly")) and word not in _VERBS


def _best(items: Sequence[str], score: Any) -> list[str]:
    """Up to MAX_ITEMS of ``items``, the best scoring, in their order."""
    keep = sorted(range(len(items)), key=lambda i: (-score(items[i]), i))[:MAX_ITEMS]
    return [items[i] for i in sorted(keep)]


def _open_questions(
    group: Sequence[Message], sentences: Sequence[tuple[int, Message, str]]
) -> list[str]:
    """Questions nobody answered: asked in the last two turns, or never taken up by a
    later turn of someone else (no shared topic word)."""
    out = []
    last = len(group) - 1  # the last two turns' questions had no time to be answered
    for i, msg, sentence in sentences:
        if not sentence.endswith("?"):
            continue
        asked = set(terms(sentence))
        later = [m for m in group[i + 1 :] if _speaker(m) != _speaker(msg)]
        answered = any(asked & set(terms(m.content)) for m in later)
        if asked and not answered and (i >= last - 1 or not later or _DELIBERATE.search(sentence)):
            out.append(f"{_speaker(msg)}: {sentence}")
    return out
