"""Extraction by a model: a prompt asking for JSON that matches :data:`EXTRACTION_SCHEMA`,
and a defensive parser, because models wrap, decorate or break their JSON."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from memory.errors import ExtractionError
from memory.formation.candidate import Candidate

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
