"""Words and phrasing for the rule-based extractor (:mod:`memory.formation.rules`).

The word lists decide where a value ends and what counts as one; the rewording turns the
user's first-person clause into a third-person memory ("I live in Lyon" -> "The user lives
in Lyon."), negated when the user says it stopped being true.
"""

from __future__ import annotations

import re

from memory.formation.candidate import Candidate


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

# Fillers that open a clause without changing what it says ("well, ...", "btw ...").
_LEAD = re.compile(
    r"^(?:(?:well|oh|ok|okay|so|also|and|but|plus|actually|btw|by the way|fyi|just so you know|"
    r"for the record|for context|hi|hello|hey|anyway|anyways|yes|yeah|yep|no|nope|now|honestly|"
    r"basically|um|uh|hmm|fun fact|fwiw|as you know|then)\b[\s,:;-]*)+",
    re.I,
)


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
