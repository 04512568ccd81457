"""The rules of the rule-based extractor: patterns over one clause, each with a handler
that builds the candidates; the first rule that yields anything wins, and the negatable
ones are tried again for "I no longer ..." statements."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import replace

from memory.formation.candidate import Candidate
from memory.formation.phrasing import (
    _I,
    _LANGS,
    _LEAD,
    _MULTI,
    _NORM,
    _PETS,
    _PROFESSIONS,
    _RELS,
    _SUBJ,
    _TAIL,
    _fact,
    _negate_text,
    _third_person,
    _topic,
    _value,
)

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
