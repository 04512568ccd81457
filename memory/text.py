"""Words: tokenising, stop-words and a light stemmer.

The FTS index stems with SQLite's own ``porter`` tokenizer; this module says
what a word is and which words carry no topic (:mod:`memory.retrieval.query` builds the
search terms from them), and gives the hashing embedder a stemmer of its own
so that "dogs" and "dog" share a feature.
"""

from __future__ import annotations

import re

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)

STOPWORDS = frozenset(
    """
a about above after again against all am an and any are aren't as at be because been
before being below between both but by can can't cannot could couldn't did didn't do
does doesn't doing don't down during each few for from further had hadn't has hasn't
have haven't having he he'd he'll he's her here here's hers herself him himself his how
how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most
mustn't my myself no nor not of off on once only or other ought our ours ourselves out
over own same shan't she she'd she'll she's should shouldn't so some such than that
that's the their theirs them themselves then there there's these they they'd they'll
they're they've this those through to too under until up very was wasn't we we'd we'll
we're we've were weren't what what's when when's where where's which while who who's
whom why why's with won't would wouldn't you you'd you'll you're you've your yours
yourself yourselves also just get got would like s t ll d ve re m
""".split()
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens; apostrophes inside words are kept."""
    return [w.replace("’", "'") for w in WORD.findall(text.lower())]


def content_words(text: str) -> list[str]:
    """Words minus stop-words: what a query is really asking about."""
    return [w for w in words(text) if w not in STOPWORDS]


_SUFFIXES = (
    ("ational", "ate"),
    ("iveness", "ive"),
    ("fulness", "ful"),
    ("ousness", "ous"),
    ("ization", "ize"),
    ("ations", "ate"),
    ("ation", "ate"),
    ("ingly", ""),
    ("edly", ""),
    ("ments", ""),
    ("ment", ""),
    ("ness", ""),
    ("ings", ""),
    ("ing", ""),
    ("ies", "y"),
    ("ied", "y"),
    ("ers", ""),
    ("er", ""),
    ("ed", ""),
    ("ly", ""),
    ("es", ""),
    ("s", ""),
)


def stem(word: str) -> str:
    """A small suffix-stripping stemmer: cheap, deterministic, good enough for
    hashing features (the FTS index uses SQLite's full Porter stemmer)."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, repl in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: len(word) - len(suffix)] + repl
            if suffix in ("ing", "ed", "ings") and len(base) > 2 and base[-1] == base[-2]:
                base = base[:-1]
            if suffix == "s" and word.endswith("ss"):
                return word
            return base
    return word


def matches_words(text: str | None, terms: list[str]) -> bool:
    """True when ``text`` holds every term as a word (stemmed, any case), as
    ``--query`` selects memories: "art" does not match "start"."""
    if not text or not terms:
        return False
    stems = {stem(w) for w in words(text)}
    # A possessive is the word ("the parrot's trip" holds "parrot"), as the
    # keyword index sees it when --query selects the memories.
    stems |= {stem(w[:-2]) for w in words(text) if w.endswith("'s") and len(w) > 2}
    return all(stem(t) in stems for t in terms)
