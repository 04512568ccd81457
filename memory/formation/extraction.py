"""Implicit memory formation: candidate facts about the user, taken from the chat buffer.

Two extractors share one output type. ``extract_rules`` is deterministic and offline, so
memory works with no model configured and tests stay exact; it favours precision (a wrong
memory is worse than a missed one): questions, hypotheticals, quoted text, code and the
assistant's words never produce anything. ``extract_with_model`` asks a model for JSON and
parses it defensively, because models wrap, decorate or break their JSON. Only the standard
library is imported: this runs after every reply and must load fast.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from memory.errors import ExtractionError

__all__ = [
    "EXTRACTION_SCHEMA",
    "Candidate",
    "build_extraction_prompt",
    "extract_rules",
    "extract_with_model",
    "parse_model_output",
]


@dataclass(frozen=True)
class Candidate:
    """A statement about the user that may become a memory.

    ``slot`` names what the statement is about, so a newer candidate with the same slot and
    another value can supersede an older memory; ``negated`` says the value stopped being true.
    """

    text: str
    kind: str = "fact"
    slot: str | None = None
    value: str | None = None
    negated: bool = False
    importance: float = 0.5
    confidence: float = 0.7
    source_index: int | None = None

    def gated(self, policy: str) -> tuple[Candidate, list[str]]:
        """This candidate with the secret gate applied to text, slot and value
        together (a value redacted in the text is redacted in ``value`` too),
        and what was found; ``refuse`` raises SecretRefusedError."""
        from memory.privacy.secrets_gate import apply_record

        fields = {"text": self.text, "slot": self.slot, "value": self.value}
        result = apply_record(fields, policy)
        if not result.findings:
            return self, []
        out = result.record
        return replace(self, text=out["text"], slot=out["slot"], value=out["value"]), list(
            result.findings
        )


def _fact(
    text: str,
    slot: str | None,
    value: str | None,
    imp: float,
    conf: float = 0.8,
    kind: str = "fact",
    negated: bool = False,
) -> Candidate:
    """A candidate whose text is a sentence; "my job" in a fact's value becomes "their job"."""
    if kind == "fact":
        text = re.sub(r"(?i)\b(?:myself|mine|my|me)\b", lambda m: _INNER[m[0].lower()], text)
    return Candidate(_sentence(text), kind, slot, value, negated, imp, conf)


# --- vocabulary ---------------------------------------------------------------------------
# Values are cut at the first word that starts a new clause or a time/filler tail, so that
# "I live in Lyon with my wife since 2019" stores "Lyon"; each value kind adds its own cuts.

# fmt: off
_I = re.I | re.S
_SUBJ = {"<IM>": r"i(?:'m|\s+am|m)", "<IVE>": r"i(?:'ve|\s+have|ve)", "<ADV>": (
    r"(?:(?:really|actually|just|currently|now|still|also|recently|finally|officially|"
    r"definitely|absolutely|totally|truly|genuinely|honestly|kind of|kinda|sort of|quite|"
    r"mostly|usually|generally|originally|basically|already)\s+)*")}
_TAIL = (
    r"because|but|although|though|since|so|when|while|if|which|where|who|whom|now|currently|"
    r"nowadays|these days|at the moment|right now|anymore|any more|any longer|again|too|"
    r"as well|lately|recently|already|for now|from now on|going forward|please|thanks|"
    r"thank you|lol|haha|btw|a lot|very much|so much|in \d{4}|(?:last|this|next) (?:year|"
    r"month|week)|(?:a|one|two|three|few|\d+) (?:\w+ )?(?:years?|months?|weeks?|days?) ago"
)
_MONTHS = r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|spring|summer|autumn|fall|winter"
_CUTS = {"raw": "with|and|or", "list": "", "date": "with|and|or",
         "place": rf"with|and|or|for|to|as|in (?:{_MONTHS})\w*|a (?:few|couple)",
         "org": "with|and|or|as|in|at|from|on|for", "job": "with|and|or|at|for|in|on|of",
         "name": "with|and|or|at|on|in|from|by|later|back|tomorrow|tonight|today|instead"}
_BLOCK = set("it this that these those them him her you your yours what how where which who "
             "whom if myself me here there home free fun not because so".split())
_NAME_BLOCK = _BLOCK | set("a an the very later back tomorrow tonight today now anytime "
                           "sometime maybe crazy whatever when please secret no".split())
_JUNK = {"the moment", "a living", "fear", "denial", "hope", "the past", "the future", "peace"}
_PROFESSIONS = set(
    "engineer developer programmer designer architect teacher professor lecturer nurse doctor "
    "physician surgeon dentist pharmacist lawyer attorney accountant chef cook baker writer "
    "author journalist editor artist musician photographer scientist researcher student "
    "manager consultant analyst electrician plumber carpenter mechanic pilot farmer "
    "firefighter therapist psychologist veterinarian vet librarian translator cashier waiter "
    "waitress barista driver entrepreneur founder freelancer economist biologist chemist "
    "physicist mathematician paramedic technician intern administrator tutor coach actor "
    "actress director producer banker trader clerk secretary ceo cto postdoc sysadmin "
    "illustrator animator recruiter salesperson".split()
)
_LANGS = set(
    "english french spanish german italian portuguese dutch polish russian ukrainian chinese "
    "mandarin cantonese japanese korean arabic hindi turkish swedish norwegian danish finnish "
    "greek czech hebrew catalan romanian hungarian vietnamese indonesian thai esperanto".split()
)
_PETS = (r"dog|cat|puppy|kitten|rabbit|bunny|hamster|guinea pig|parrot|budgie|bird|fish|"
         r"horse|pony|turtle|tortoise|snake|lizard|gecko|ferret")
_RELS = (r"wife|husband|partner|spouse|girlfriend|boyfriend|fianc[ée]e?|mother|mom|mum|"
         r"father|dad|sister|brother|son|daughter|boss|best friend|roommate|flatmate|"
         r"grandmother|grandfather")
_NORM = {"puppy": "dog", "kitten": "cat", "bunny": "rabbit", "budgie": "bird", "mom": "mother",
         "mum": "mother", "dad": "father", "wife": "partner", "husband": "partner",
         "spouse": "partner", "girlfriend": "partner", "boyfriend": "partner"}
_MULTI = {"sister", "brother", "son", "daughter"}  # slot gets the name: there may be several
_PAST = set("quit left went got made took bought met began became chose sold ran found gave "
            "lost won saw told said thought knew felt came put set read spent sent built "
            "kept wrote broke drove ate fell forgot had was".split())


# fmt: on


def _value(raw: str | None, kind: str = "raw") -> str | None:
    """A cleaned value, or None when it is empty, too long or obviously not a value.

    A leading "c" in ``kind`` requires a capital letter (names after a bare "is").
    """
    base = kind.lstrip("c")
    cuts = "|".join(filter(None, [_TAIL, _CUTS[base]]))
    value = re.sub(rf"\s+(?:{cuts})\b.*$", "", raw or "", flags=_I)
    if base != "date":
        value = re.split(r"\s*[,(;:]|\s+-\s", value)[0]
    value = value.strip(" \t.,!?;:\"'")
    words = value.lower().split()
    if not words or len(words) > {"name": 4, "list": 8}.get(base, 6) or value.lower() in _JUNK:
        return None
    if words[0] in (_NAME_BLOCK if base == "name" else _BLOCK) or not value[0].isalnum():
        return None
    return None if kind.startswith("c") and not value[0].isupper() else value


def _topic(value: str) -> str:
    """A slot key from a value: lower case, without articles, possessives or "to"."""
    return " ".join(re.sub(r"^(?:(?:a|an|the|my|some|to)\s+)+", "", value.lower()).split())


def _sentence(text: str) -> str:
    text = " ".join(text.split()).rstrip(" .!?,;:")
    return text[:1].upper() + text[1:] + "."


def _conj(verb: str) -> str:
    """Third person singular of a present-tense verb; past tenses stay as they are."""
    low = verb.lower()
    if irregular := {"have": "has", "do": "does", "go": "goes", "am": "is"}.get(low):
        return irregular
    if low in _PAST or (low.endswith("ed") and not low.endswith("eed")):
        return verb
    if re.search(r"(?:s|sh|ch|x|z|o)$", low):
        return verb + "es"
    return verb[:-1] + "ies" if re.search(r"[^aeiou]y$", low) else verb + "s"


def _base(verb: str) -> str:
    low = verb.lower()
    if irregular := {"has": "have", "does": "do", "is": "be"}.get(low):
        return irregular
    if low.endswith("ies"):
        return verb[:-3] + "y"
    return verb[:-2] if re.search(r"(?:sses|shes|ches|xes|zes|oes)$", low) else verb[:-1]


# fmt: off
_INNER = {"my": "their", "me": "them", "myself": "themselves", "mine": "theirs", "i": "they",
          "i'm": "they're", "i am": "they are", "i've": "they've", "i'll": "they'll",
          "i'd": "they'd", "i was": "they were"}
_SUBJECTS = [(r"i'm|i am|im", "is"), (r"i've|i have|ive", "has"), (r"i'll|i will", "will"),
             (r"i'd|i would", "would"), (r"i was", "was"),
             (r"i don't|i do not|i dont", "does not"),
             (r"i (can't|cannot|can|could|should|must|might|may|won't|didn't|did|had)", "")]


# fmt: on


def _third_person(text: str) -> str:
    """Rewrite a first-person clause as "The user ..." (for "remember that ..." and the like)."""
    text = text.strip()
    for pattern, verb in _SUBJECTS:
        if m := re.match(rf"(?:{pattern})\b", text, _I):
            text = f"The user {verb or m[1]}{text[m.end() :]}"
            break
    else:
        adv = r"(?:(?:no longer|never|always|also|still|just|really|usually|often|now)\s+)*"
        if m := re.match(rf"i\s+({adv})(\w+)", text, _I):
            text = f"The user {m[1]}{_conj(m[2])}{text[m.end() :]}"
        elif re.match(r"my\b", text, _I):
            text = "The user's" + text[2:]
    inner = r"(?i)\b(?:i'm|i am|i've|i'll|i'd|i was|myself|mine|my|me|i)\b"
    return _sentence(re.sub(inner, lambda m: _INNER[" ".join(m[0].lower().split())], text))


def _negate_text(text: str, no_longer: bool) -> str:
    """ "The user lives in Lyon." -> "The user no longer lives in Lyon." / "does not live"."""
    neg = "no longer" if no_longer else "not"
    if m := re.match(r"(The user(?:'s [^.]*?)?) (is|was) (.*)$", text):
        return f"{m[1]} {m[2]} {neg} {m[3]}"
    if m := re.match(r"The user (\w+) (.*)$", text):
        verb = f"no longer {m[1]}" if no_longer else f"does not {_base(m[1])}"
        return f"The user {verb} {m[2]}"
    return text


# --- handlers: (match, clause) -> candidates; an empty list lets the next rule try --------

Handler = Callable[[re.Match[str], str], list[Candidate]]


def _simple(
    text: str, slot: str, kind: str = "raw", imp: float = 0.6, fixed: str | None = None
) -> Handler:
    """A one-value rule; ``text`` and ``slot`` are templates over the groups, {v} and {k}."""

    def handle(m: re.Match[str], clause: str) -> list[Candidate]:
        if (value := _value(m["v"], kind)) is None:
            return []
        groups = {k: (x or "").lower() for k, x in m.groupdict().items()} | {"v": value}
        key = slot.format(**groups, k=_topic(value))
        return [_fact(text.format(**groups), key, fixed or value, imp)]

    return handle


def _remember(m: re.Match[str], clause: str) -> list[Candidate]:
    """An explicit "remember that ..." matters more than what we pick up in passing."""
    body = m["v"].strip()
    if body.lower().startswith("to "):  # a reminder, unless "remember to always ..."
        return _instruction(body[3:]) if re.match(r"(?:always|never)\b", body[3:], _I) else []
    found = _facts(body) or [_fact(_third_person(body), None, None, 0.8, 0.85)]
    return [replace(c, importance=max(c.importance, 0.8)) for c in found]


def _from_now_on(m: re.Match[str], clause: str) -> list[Candidate]:
    if found := _facts(m["t"]):
        return found
    if re.match(r"(?:i|i'm|i'll|i've|i'd|im|my)\b", m["t"], _I):
        return [_fact(_third_person(m["t"]), None, None, 0.6)]
    return _instruction(m["t"])


def _eat(m: re.Match[str], clause: str) -> list[Candidate]:
    """ "I don't eat pork" is a standing diet fact, not the retraction of "I eat pork"."""
    if (value := _value(m["v"])) is None:
        return []
    plain = m["neg"] and m["neg"].lower() != "no longer" and not re.search(r"any\s?more", clause)
    text = f"The user doesn't eat {value}" if plain else f"The user no longer eats {value}"
    return [_fact(text, f"diet:{_topic(value)}", "avoids", 0.7)]


_LIKES = dict(
    zip(
        "like love adore enjoy prefer hate dislike detest loathe".split(),
        "likes loves adores enjoys prefers hates dislikes detests loathes".split(),
        strict=True,
    )
)


def _preference(m: re.Match[str], clause: str) -> list[Candidate]:
    """Likes and dislikes share the slot preference:<topic>, so one supersedes the other."""
    verb = " ".join(m["verb"].lower().split())
    negative = verb not in {"like", "love", "adore", "enjoy", "prefer"}
    over = r"over|rather than|instead of" + ("|to" if verb == "prefer" else "")
    comp = re.match(rf"(?!to\s)(.+?)\s+({over}|more than|better than)\s+(.+)$", m["v"], _I)
    if comp and not negative and (a := _value(comp[1], "list")) and (b := _value(comp[3])):
        slot = "preference:" + " vs ".join(sorted([_topic(a), _topic(b)]))
        return [_fact(f"The user {_LIKES[verb]} {a} {comp[2].lower()} {b}", slot, a, 0.5)]
    value = _value(m["v"], "list")
    if value is None or value.lower().startswith(("the idea", "the way")):
        return []
    verb3 = _LIKES.get(verb) or re.sub(r"^do(?:n't|nt| not)", "does not", verb)
    kind = "dislikes" if negative else "likes"
    return [_fact(f"The user {verb3} {value}", f"preference:{_topic(value)}", kind, 0.5)]


def _favourite(m: re.Match[str], clause: str) -> list[Candidate]:
    if (value := _value(m["v"])) is None:
        return []
    topic = _topic(m["t"])
    return [_fact(f"The user's favourite {topic} is {value}", f"preference:{topic}", value, 0.5)]


def _allergy(m: re.Match[str], clause: str) -> list[Candidate]:
    """One candidate per allergen: "peanuts and shellfish" are two separate facts."""
    items = re.split(r"\s*(?:,\s*(?:and|or)?|\band\b|\bor\b|&)\s*", m["v"])
    values = [v for item in items if (v := _value(item))]
    return [
        _fact(f"The user is allergic to {v}", f"allergy:{_topic(v)}", v, 0.9, 0.9) for v in values
    ]


def _job(raw: str, template: str, vocabulary: bool) -> list[Candidate]:
    """A job and, when the clause names one ("a nurse at St Mary's"), the employer.

    "I'm a ..." only counts with a known profession as its last word: "I'm a bit tired".
    """
    value = _value(raw, "job")
    if value is None or (vocabulary and value.split()[-1].lower() not in _PROFESSIONS):
        return []
    found = [_fact(template.format(v=value), "job", value, 0.7, 0.75 if vocabulary else 0.8)]
    if (at := re.search(r"\s(?:at|for)\s+(.+)$", raw, _I)) and (org := _value(at[1], "org")):
        found.append(_fact(f"The user works at {org}", "employer", org, 0.7, 0.75))
    return found


def _employer(m: re.Match[str], clause: str) -> list[Candidate]:
    if not (m["p"] or m["j"]):  # "I work from home", "I work as ..."
        return []
    if (value := _value(m["v"], "corg" if m["j"] else "org")) is None:
        return []
    prep = {"by": "for", None: "at"}.get(m["p"] and m["p"].strip().lower(), m["p"])
    text = f"The user joined {value}" if m["j"] else f"The user works {prep.strip()} {value}"
    found = [_fact(text, "employer", value, 0.7)]
    if job := re.search(r"\sas\s+(an?\s+)?(.+)$", m["v"], _I):
        found += _job(job[2], "The user works as " + (job[1] or "") + "{v}", False)[:1]
    return found


def _work_as(m: re.Match[str], clause: str) -> list[Candidate]:
    return _job(m["v"], "The user works as " + (m["a"] or "") + "{v}", False)


def _i_am_a(m: re.Match[str], clause: str) -> list[Candidate]:
    return _job(m["v"], "The user is " + m["a"] + "{v}", True)


def _named(m: re.Match[str], clause: str) -> list[Candidate]:
    """ "my dog is called Rex", "my wife is Lena" (a bare "is" needs a capitalised name)."""
    who, how = " ".join(m["r"].lower().split()), m["how"].lower()
    if (value := _value(m["v"], "name" if "name" in how or "call" in how else "cname")) is None:
        return []
    norm = "partner" if who.startswith("fianc") else _NORM.get(who, who)
    slot = f"pet:{norm}" if re.fullmatch(_PETS, who) else f"relationship:{norm}"
    slot += f":{value.lower()}" if norm in _MULTI else ""
    called = "" if how.strip() == "is" else "called "
    return [_fact(f"The user's {who} is {called}{value}", slot, value, 0.7, 0.85)]


def _has_pet(m: re.Match[str], clause: str) -> list[Candidate]:
    pet, value = m["p"].lower(), None
    if named := re.match(r"\s+(?:called|named)\s+(.+)$", m["r"], _I):
        value = _value(named[1], "name")
    elif not re.match(rf"\s*(?:$|,|and\b|that\b|yesterday\b|{_TAIL})", m["r"], _I):
        return []  # "I have a dog walker"
    text = f"The user has a {pet}" + (f" named {value}" if value else "")
    return [_fact(text, f"pet:{_NORM.get(pet, pet)}", value, 0.6)]


def _decision(m: re.Match[str], clause: str) -> list[Candidate]:
    if m["v"].split()[0].lower() in {"my", "his", "her", "our", "us", "their", "him", "them"}:
        return []  # "I'm going with my sister"
    return [_fact(_third_person(clause.split(",")[0]), None, None, 0.7, 0.75)]


def _instruction(text: str) -> list[Candidate]:
    """A standing instruction to the assistant, kept in the imperative ("Answer in French.")."""
    text = re.sub(
        r"^(?:please\s+|you\s+(?:should|must|will|shall)\s+|i want you to\s+)+",
        "",
        text.strip(),
        flags=_I,
    )
    tail = r"[\s,]*\b(?:please|from now on|going forward|in (?:the )?future|thanks|thank you)\W*$"
    text = re.sub(rf"(?:{tail})+", "", text, flags=_I).strip(" ,.!")
    words = text.lower().split()
    # "never mind", "always the same": idioms, not instructions
    idiom = set(
        "mind the a an been was is had has have did thought knew know heard seen really "
        "so same again".split()
    )
    if len(words) < 2 or (words[0] in {"always", "never"} and words[1] in idiom):
        return []
    lang = re.search(r"\b(?:answer|reply|respond|write|speak|talk)\b.*?\bin\s+(\w+)", text, _I)
    if lang and lang[1].lower() in _LANGS:
        return [_fact(text, "instruction:language", lang[1].capitalize(), 0.8, kind="instruction")]
    return [_fact(text, None, None, 0.8, kind="instruction")]


def _dont_call_me(m: re.Match[str], clause: str) -> list[Candidate]:
    if (value := _value(m["v"], "name")) is None:
        return []
    return [
        _fact(f"The user does not want to be called {value}", "nickname", value, 0.7, negated=True)
    ]


# --- the rule table: first match wins; "neg" rules are reused for negated statements -----

# fmt: off
_RULE_TABLE: list[tuple[str, Handler, bool]] = [
    (r"(?:please\s+)?(?:remember|note|keep in mind|don't forget|do not forget|make a note|"
     r"take note)(?:\s+(?:that|this|of this))?\s*[:,-]?\s+(?P<v>.+)", _remember, False),
    (r"(?:from now on|going forward|from today|henceforth|moving forward|in (?:the )?future)"
     r"\b[\s,]*(?P<t>.+)", _from_now_on, False),
    (r"(?:i\s+<ADV>(?P<neg>don't|do not|dont|never|no longer)|i(?:'ve|\s+have)?\s+<ADV>"
     r"(?:stopped|quit|gave up))\s+eat(?:ing)?\s+(?P<v>.+)", _eat, True),
    (r"i\s+<ADV>(?P<verb>like|love|adore|enjoy|prefer|hate|dislike|detest|loathe|can't stand|"
     r"cannot stand|(?:don't|do not|dont)\s+(?:really\s+)?(?:like|enjoy|love))\s+(?P<v>.+)",
     _preference, True),
    (r"<IM>\s+<ADV>(?:a\s+)?(?:(?:big|huge)\s+)?fan\s+of\s+(?P<v>.+)",
     _simple("The user is a fan of {v}", "preference:{k}", "list", 0.5, "likes"), True),
    (r"my (?:favou?rite|fave|fav) (?P<t>[\w' -]+?)\s+(?:is|are)\s+(?P<v>.+)", _favourite, True),
    (r"(?:<IM>\s+<ADV>(?:(?:very|severely|highly|deathly|mildly)\s+)?allergic to|"
     r"i\s+have\s+(?:an?\s+)?allerg(?:y|ies)\s+to)\s+(?P<v>.+)", _allergy, True),
    (r"i\s+have\s+(?:an?\s+)?(?:(?:severe|serious|mild|bad)\s+)?(?P<v>[\w-]+)\s+allerg(?:y|ies)",
     _simple("The user is allergic to {v}", "allergy:{k}", imp=0.9), True),
    (r"<IM>\s+<ADV>(?P<v>\w+)[\s-]intolerant\b",
     _simple("The user is {v} intolerant", "intolerance:{k}", imp=0.8), True),
    (r"<IM>\s+<ADV>(?:(?:an?|strictly|fully|strict)\s+)*(?P<v>vegetarian|vegan|pescatarian|"
     r"pescetarian|flexitarian|keto|paleo|gluten[- ]free|kosher|halal)\b",
     _simple("The user is {v}", "diet", imp=0.8), True),
    (r"<IM>\s+<ADV>on\s+an?\s+(?P<v>[\w-]+)\s+diet\b", _simple("The user is on a {v} diet", "diet"),
     True),
    (r"my\s+name(?:'s|\s+is)\s+(?P<v>.+)", _simple("The user's name is {v}", "name", "name", 0.9),
     True),
    (r"<IM>\s+(?:called|named)\s+(?P<v>.+)", _simple("The user's name is {v}", "name", "name", 0.9),
     True),
    (r"(?:(?:you\s+can|please|just)\s+)*call\s+me\s+(?P<v>.+)",
     _simple("The user wants to be called {v}", "nickname", "name", 0.8), True),
    (r"my\s+nickname(?:'s|\s+is)\s+(?P<v>.+)",
     _simple("The user's nickname is {v}", "nickname", "name", 0.7), True),
    (r"<IM>\s+(?P<v>\d{1,3})(?:\s*(?:years?|yrs?)[\s-]*old|\s+years?\s+of\s+age|\s*y/?o)?"
     r"(?:\s+(?:now|today|already))?", _simple("The user is {v} years old", "age"), True),
    (r"i\s+(?:just\s+)?turned\s+(?P<v>\d{1,3})\b.*", _simple("The user is {v} years old", "age"),
     True),
    (r"my\s+(?:birthday|bday|date of birth)(?:'s|\s+is)\s+(?:on\s+)?(?P<v>.+)",
     _simple("The user's birthday is {v}", "birthday", "date", 0.7), True),
    (r"i\s+was\s+born\s+on\s+(?P<v>.+)",
     _simple("The user was born on {v}", "birthday", "date", 0.7), True),
    (r"i\s+was\s+born\s+in\s+(?P<v>\d{4})\b.*", _simple("The user was born in {v}", "birth_year"),
     True),
    (r"i\s+was\s+born\s+in\s+(?P<v>.+)", _simple("The user was born in {v}", "birthplace", "place"),
     True),
    (r"(?:i\s+<ADV>(?:live|reside)|<IM>\s+<ADV>(?:living|residing)|<IVE>\s+<ADV>"
     r"(?:lived|been living))\s+in\s+(?P<v>.+)",
     _simple("The user lives in {v}", "location", "place", 0.7), True),
    (r"<IM>\s+<ADV>based\s+(?:in|out of)\s+(?P<v>.+)",
     _simple("The user is based in {v}", "location", "place", 0.7), True),
    (r"(?:i|<IVE>)\s+<ADV>(?:moved|relocated)\s+to\s+(?P<v>.+)",
     _simple("The user moved to {v}", "location", "place", 0.7), True),
    (r"<IM>\s+<ADV>(?:moving|relocating)\s+to\s+(?P<v>.+)",
     _simple("The user is moving to {v}", "location", "place", 0.7), True),
    (r"(?:<IM>\s+<ADV>from|i\s+<ADV>come\s+from)\s+(?P<v>.+)",
     _simple("The user is from {v}", "origin", "place"), True),
    (r"<IM>\s+<ADV>married\s+to\s+(?P<v>.+)",
     _simple("The user is married to {v}", "relationship:partner", "name", 0.7), True),
    (r"(?:i\s+<ADV>work|<IM>\s+<ADV>working|<IM>\s+<ADV>employed|(?P<j>i|<IVE>)\s+<ADV>joined)"
     r"\s+(?P<p>at\s+|for\s+|by\s+)?(?P<v>.+)", _employer, True),
    (r"i\s+<ADV>work\s+as\s+(?P<a>an?\s+)?(?P<v>.+)", _work_as, True),
    (r"<IM>\s+<ADV>(?P<a>an?\s+)(?P<v>.+)", _i_am_a, True),
    (r"<IM>\s+<ADV>(?P<v>retired|unemployed|self-employed)", _simple("The user is {v}", "job"),
     True),
    (rf"my\s+(?P<r>{_PETS}|{_RELS})(?P<how>'s\s+name\s+is|'s\s+name's|\s+is\s+called|"
     r"\s+is\s+named|\s+is)\s+(?P<v>.+)", _named, True),
    (rf"i(?:'ve|\s+have)?\s+<ADV>(?:have|own|got)\s+(?:a|an|one)\s+(?P<p>{_PETS})\b(?P<r>.*)",
     _has_pet, True),
    (r"(?:(?:i|<IVE>)\s+<ADV>(?:decided|chose|chosen|opted for|settled on)|"
     r"<IM>\s+<ADV>going with)\s+(?P<v>.+)", _decision, True),
    (r"(?P<t>.+?)[\s,]+(?:from now on|going forward|in (?:the )?future)", _from_now_on, False),
    (r"(?:please\s+)?(?:(?:i want|i'd like|i would like) you to\s+)?(?P<t>(?:always|never)\s+.+)",
     lambda m, c: _instruction(m["t"]), False),
    (r"(?:please\s+)?(?P<t>(?:answer|reply|respond|write|speak|talk)\b(?:\s+to\s+me)?\s+"
     r"(?:only\s+)?in\s+(?P<l>\w+).*)",
     lambda m, c: _instruction(m["t"]) if m["l"].lower() in _LANGS else [], False),
    (r"(?:please\s+)?(?:don't|do not|stop)\s+call(?:ing)?\s+me\s+(?P<v>.+)", _dont_call_me, False),
]
# fmt: on


@functools.cache
def _rules() -> list[tuple[re.Pattern[str], Handler, bool]]:
    """The table compiled, on first use: compiling costs more than the rest of the import."""
    compiled = []
    for pattern, handler, negatable in _RULE_TABLE:
        pattern = re.sub(r"<[A-Z]+>", lambda m: _SUBJ[m[0]], pattern)
        compiled.append((re.compile(f"(?:{pattern})$", _I), handler, negatable))
    return compiled


def _facts(clause: str, negatable_only: bool = False) -> list[Candidate]:
    """Candidates from one clause: the first rule that yields anything, else a negation."""
    clause = _LEAD.sub("", clause).strip(" \t,.;:!-*•")
    for pattern, handler, negatable in _rules():
        if (negatable or not negatable_only) and (m := pattern.match(clause)):
            if found := handler(m, clause):
                return found
    return [] if negatable_only else _negations(clause)


def _negations(clause: str) -> list[Candidate]:
    """ "I no longer live in Lyon": the positive rule's candidate, negated and reworded.

    Plain "I don't X" only counts when X is something a rule recognises; "no longer",
    "anymore" and "stopped" also keep other durable habits ("I no longer play guitar").
    """
    anymore = re.search(r"\s*\b(?:anymore|any more|any longer)\b", clause, _I)
    body = clause[: anymore.start()] + clause[anymore.end() :] if anymore else clause
    neg = r"(?P<be>i'm|i am|im)\s+(?:no longer|not)|i\s+(?:no longer|don't|do not|dont)"
    m = re.match(
        rf"(?:{neg}|(?P<stop>i(?:'ve|\s+have)?\s+(?:stopped|quit|gave up)))\s+(.+)$", body, _I
    )
    if not m:
        return []
    rest, no_longer = m[3], bool(anymore or m["stop"] or "no longer" in m[0][: m.start(3)].lower())
    forms = [f"i'm {rest}" if m["be"] else f"i {rest}"]
    if m["stop"] and (ger := re.match(r"(\w+?)(\w)ing\b(.*)$", rest, _I)):  # "working at X"
        stem = ger[1] + ger[2]
        forms = [f"i {s}{ger[3]}" for s in (stem, stem + "e", ger[1]) if s]
    elif m["stop"] and (job := re.match(r"my\s+job(?:\s+(?:at|with)\s+(.+))?$", rest, _I)):
        if not job[1]:
            return [_fact("The user quit their job", "employer", None, 0.7, negated=True)]
        forms = [f"i work at {job[1]}"]
    for form in forms:
        if found := _facts(form, negatable_only=True):
            return [replace(c, negated=True, text=_negate_text(c.text, no_longer)) for c in found]
    transient = set("feel think know need want care remember understand see get mind".split())
    if m["be"] or not no_longer or rest.split()[0].lower() in transient:
        return []
    text = _third_person(clause.split(",")[0] if m["stop"] else f"i no longer {rest}")
    slot, value = (f"habit:{_topic(rest)}", _topic(rest)) if m["stop"] else (None, None)
    return [_fact(text, slot, value, 0.5, 0.6, negated=True)]


# --- splitting messages into clauses ------------------------------------------------------

_LEAD = re.compile(
    r"^(?:(?:well|oh|ok|okay|so|also|and|but|plus|actually|btw|by the way|fyi|just so you know|"
    r"for the record|for context|hi|hello|hey|anyway|anyways|yes|yeah|yep|no|nope|now|honestly|"
    r"basically|um|uh|hmm|fun fact|fwiw|as you know|then)\b[\s,:;-]*)+",
    re.I,
)
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


# --- model extraction ---------------------------------------------------------------------

_UNIT = {"type": "number", "minimum": 0, "maximum": 1}
_ITEM: dict[str, Any] = {
    "text": {"type": "string", "description": "One statement in the third person: 'The user'"},
    "kind": {"type": "string", "enum": ["fact", "instruction"]},
    "slot": {"type": ["string", "null"], "description": "What may change: location, name ..."},
    "value": {"type": ["string", "null"]},
    "negated": {"type": "boolean"},
    "importance": _UNIT,
    "confidence": _UNIT,
    "source_index": {"type": ["integer", "null"], "minimum": 0},
}
EXTRACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "facts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": _ITEM,
                "required": list(_ITEM),
                "additionalProperties": False,
            },
        }
    },
    "required": ["facts"],
    "additionalProperties": False,
}

_SYSTEM_PROMPT = """\
You maintain the long-term memory of a personal assistant. From the conversation below, \
extract durable facts, preferences, decisions and standing instructions ABOUT THE USER, \
taken only from the user's own messages (never from what the assistant said).
- Write each as one short, self-contained statement in the third person: "The user lives in \
Lyon.", "The user's name is Ana.", "The user prefers tea over coffee."
- kind is "instruction" for standing instructions to the assistant ("always answer in French" \
-> "Answer in French."), otherwise "fact".
- Skip small talk, questions, hypotheticals, quoted text, one-off requests and transient \
states ("I'm tired").
- For facts that can change, give a slot (name, nickname, location, origin, employer, job, \
age, birthday, diet, allergy:<thing>, preference:<topic>, pet:<animal>, \
relationship:<person>, instruction:language, ...) and its value ("Lyon"); otherwise null.
- negated is true when the user says something stopped being true ("I no longer live in \
Lyon" -> slot location, value Lyon, negated true, text "The user no longer lives in Lyon.").
- importance (0..1): how useful in future conversations; confidence (0..1): how sure you \
are the user meant it; source_index: the [number] of the message it came from.
- Do not repeat already known facts unless they changed. If there is nothing: {"facts": []}
Answer with one JSON object and nothing else, matching this JSON schema:
"""


_PEOPLE_PROMPT = """\
You index a conversation between people so that it can be searched later. From the \
conversation below, extract durable facts about SUBJECT: what they did, plan, own, like, \
believe and care about, their relationships, jobs, places and dates. Each message begins with \
its speaker's name and date.
- Write each as one short, self-contained statement in the third person that names the person \
(never "I", "the user" or "the speaker"): "Priya started a pottery class on \
4 March 2021.", "Tomas's daughter plays the violin."
- Turn relative times ("yesterday", "last year") into dates, using the message's date.
- kind is "fact". Skip greetings, small talk and questions.
- For facts that can change, give a slot (location, job, relationship:<person>, \
preference:<topic>, ...) and its value; otherwise null. negated is true when something \
stopped being true.
- importance (0..1): how useful for answering questions later; confidence (0..1); \
source_index: the [number] of the message it came from.
- If there is nothing: {"facts": []}
Answer with one JSON object and nothing else, matching this JSON schema:
"""


def build_extraction_prompt(
    messages: Sequence[Mapping[str, str]],
    known_facts: Sequence[str] = (),
    subject: str | None = None,
) -> list[dict[str, str]]:
    """Chat messages asking a model for the extraction JSON: task, schema, numbered buffer.

    ``subject`` (e.g. "Priya and Tomas") switches to the prompt for conversations between
    named people, such as imported logs, where the facts are about them and not "the user".
    """
    task = _SYSTEM_PROMPT if subject is None else _PEOPLE_PROMPT.replace("SUBJECT", subject)
    system = task + json.dumps(EXTRACTION_SCHEMA)
    lines = [
        f"[{i}] {m.get('role', 'user')}: {m.get('content', '')}" for i, m in enumerate(messages)
    ]
    user = "Conversation:\n" + "\n".join(lines)
    if known_facts:
        user = "Already known:\n" + "\n".join(f"- {f}" for f in known_facts) + "\n\n" + user
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _load_json(raw: str) -> Any:
    """The first JSON value in ``raw``: bare, inside ```json fences, or amid prose."""
    error: Exception = ValueError("empty answer")
    for text in [raw.strip(), *re.findall(r"```(?:json|JSON)?\s*(.*?)```", raw, re.S)]:
        try:
            return json.loads(text)
        except ValueError as exc:
            error = exc
    for start in (m.start() for m in re.finditer(r"[{\[]", raw)):
        try:
            return json.JSONDecoder().raw_decode(raw, start)[0]
        except ValueError:
            continue
    raise ExtractionError(
        f"The model's extraction answer was not valid JSON: {error} (it began "
        f"{raw.strip()[:60]!r}); try another model or the rule-based extraction."
    )


def _unit(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return default
    return min(1.0, max(0.0, float(value)))


def _text(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    return (" ".join(value.split()) or None) if isinstance(value, str) else None


def parse_model_output(raw: str, n_messages: int) -> list[Candidate]:
    """Validated candidates from a model's answer: malformed items are dropped, not guessed."""
    data = _load_json(raw)
    if isinstance(data, dict):
        data = data.get("facts", [data] if "text" in data else None)
    if not isinstance(data, list):
        raise ExtractionError(
            "The model's extraction answer was not valid JSON: expected an object with a "
            "'facts' list; try another model or the rule-based extraction."
        )
    found: list[Candidate] = []
    for item in data:
        item = {"text": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            continue
        text, index, negated = _text(item["text"]), item.get("source_index"), item.get("negated")
        if text is None or any(c.text.casefold() == text.casefold() for c in found):
            continue
        found.append(
            Candidate(
                text=text,
                kind="instruction" if str(item.get("kind")).lower() == "instruction" else "fact",
                slot=(_text(item.get("slot")) or "").lower() or None,
                value=_text(item.get("value")),
                negated=negated is True or str(negated).lower() == "true",
                importance=_unit(item.get("importance"), 0.5),
                confidence=_unit(item.get("confidence"), 0.7),
                source_index=index if type(index) is int and 0 <= index < n_messages else None,
            )
        )
    return found


def extract_with_model(
    complete: Callable[[list[dict[str, str]]], str],
    messages: Sequence[Mapping[str, str]],
    known_facts: Sequence[str] = (),
    subject: str | None = None,
) -> list[Candidate]:
    """Ask a model for candidates; any failure becomes ExtractionError so callers can fall back.

    Candidates the model attributes to an assistant message are dropped: memories must come
    from what the user said.
    """
    try:
        raw = complete(build_extraction_prompt(messages, known_facts, subject))
    except ExtractionError:
        raise
    except Exception as exc:
        raise ExtractionError(f"The model could not extract facts: {exc}") from exc
    if not isinstance(raw, str):
        raise ExtractionError("The model's extraction answer was not valid JSON: not text.")
    found = parse_model_output(raw, len(messages))
    return [
        c for c in found if c.source_index is None or messages[c.source_index].get("role") == "user"
    ]
