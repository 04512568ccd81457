"""Rule-based extraction: deterministic and offline, so memory works with no model
configured and tests stay exact.

It favours precision (a wrong memory is worse than a missed one): each user message is cut
into statement clauses, leaving out questions, hypotheticals, quoted text, code and the
assistant's words, and each clause is matched against :mod:`memory.formation.rule_table`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

from memory.formation.candidate import Candidate
from memory.formation.phrasing import _LEAD
from memory.formation.rule_table import _facts

_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.S)
_QUOTES = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”|«[^»\n]*»|(?<!\w)'[^'\n]*'(?!\w)")
_PROTECT = re.compile(r"\.(?=\w)|\b(?:St|Dr|Mr|Mrs|Ms|Jr|Sr|Inc|Ltd|Co|Mt|Prof|vs|etc)\.", re.I)
_ASK = re.compile(r"^(?:can|could|would|will)\s+you\s+(?:please\s+)?(?=remember|note|keep)", re.I)
_QUESTION = re.compile(
    r"^(?:what|where|who|whom|whose|when|why|how|which|do|does|did|is|are|am|can|could|would|"
    r"should|will|shall|have|has|was|were)\b",
    re.I,
)
_HYPOTHETICAL = re.compile(
    r"\b(?:if|suppose|supposing|imagine|hypothetically|pretend|unless|in case|whether|wish|"
    r"when|whenever|assuming)\b",
    re.I,
)
_SUBJECT_AHEAD = r"(?=(?:i|i'm|im|i've|i'd|i'll|my|call me|please|from now on|remember)\b)"
_VERB_AHEAD = r"(?=(?:work|live|moved|love|like|hate|prefer|have)\b)"
_SPLIT = re.compile(
    rf"(?:\s*[,;]\s*(?:and|but|so|also|plus)?\s*|\s+(?:and|but|so|plus|also|though|although|"
    rf"while|whereas)\s+){_SUBJECT_AHEAD}|\s+(?:and|but)\s+(?={_VERB_AHEAD})",
    re.I,
)


def _clauses(content: str) -> Iterator[str]:
    """Statement clauses of one user message, without quotes, code, questions or "if"s."""
    text = _CODE.sub(" . ", content.replace("’", "'").replace("‘", "'"))
    lines = _QUOTES.sub(" ", text).splitlines()
    text = _PROTECT.sub(
        lambda m: m[0].replace(".", "\0"),
        "\n".join(line for line in lines if not line.lstrip().startswith(">")),
    )
    for sentence in re.findall(r"[^.!?;\n]+[.!?;]*", text):
        sentence, asked = _ASK.subn("", sentence.replace("\0", ".").strip(" \t-*•"))
        if sentence.endswith("?") and not asked:
            continue
        if hypothetical := _HYPOTHETICAL.search(sentence):
            sentence = sentence[: hypothetical.start()]
        sentence = re.sub(
            r"(?:[\s,;:-]+(?:even|only|and|or|but|so|except|especially|as|just))*"
            r"[\s,;:-]*$",
            "",
            _LEAD.sub("", sentence),
            flags=re.I,
        )
        if sentence and not _QUESTION.match(sentence):
            for i, clause in enumerate(_SPLIT.split(sentence)):
                if clause.strip():  # "I live in Lyon and work at Acme": the 2nd clause gets "I"
                    yield ("I " if i and re.match(_VERB_AHEAD, clause, re.I) else "") + clause


def extract_rules(messages: Sequence[Mapping[str, str]]) -> list[Candidate]:
    """Candidates from the user's messages by fixed patterns, in order and de-duplicated."""
    seen: set[str] = set()
    found: list[Candidate] = []
    for index, message in enumerate(messages):
        if message.get("role") != "user":
            continue
        for clause in _clauses(message.get("content") or ""):
            for candidate in _facts(clause):
                if candidate.text.casefold() not in seen:
                    seen.add(candidate.text.casefold())
                    found.append(replace(candidate, source_index=index))
    return found
