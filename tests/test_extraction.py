"""memory.formation.extraction: rule-based extraction, and parsing of a (fake) model's JSON
answer."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory.errors import ExtractionError
from memory.formation.extraction import (
    EXTRACTION_SCHEMA,
    Candidate,
    build_extraction_prompt,
    extract_rules,
    extract_with_model,
    parse_model_output,
)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def facts(text: str) -> list[tuple[str, str, str | None, str | None, bool]]:
    """(text, kind, slot, value, negated) of every candidate from one user message."""
    return [(c.text, c.kind, c.slot, c.value, c.negated) for c in extract_rules([user(text)])]


F, INS = "fact", "instruction"

POSITIVE = [
    # names and nicknames
    ("My name is Ana", [("The user's name is Ana.", F, "name", "Ana", False)]),
    ("my name's José María.", [("The user's name is José María.", F, "name", "José María", False)]),
    ("I'm called Bob, nice to meet you", [("The user's name is Bob.", F, "name", "Bob", False)]),
    (
        "Call me Bobby from now on",
        [("The user wants to be called Bobby.", F, "nickname", "Bobby", False)],
    ),
    # places
    ("I live in Lyon.", [("The user lives in Lyon.", F, "location", "Lyon", False)]),
    ("i live in lyon", [("The user lives in lyon.", F, "location", "lyon", False)]),
    ("I'm based in Berlin", [("The user is based in Berlin.", F, "location", "Berlin", False)]),
    ("I moved to Paris last year", [("The user moved to Paris.", F, "location", "Paris", False)]),
    (
        "I relocated to Lisbon for work",
        [("The user moved to Lisbon.", F, "location", "Lisbon", False)],
    ),
    (
        "I'm moving to Tokyo in March",
        [("The user is moving to Tokyo.", F, "location", "Tokyo", False)],
    ),
    (
        "I've been living in São Paulo for 3 years",
        [("The user lives in São Paulo.", F, "location", "São Paulo", False)],
    ),
    (
        "Actually, I live in St. Louis with my wife",
        [("The user lives in St. Louis.", F, "location", "St. Louis", False)],
    ),
    ("I'm from Brazil", [("The user is from Brazil.", F, "origin", "Brazil", False)]),
    # work
    ("I work at Acme", [("The user works at Acme.", F, "employer", "Acme", False)]),
    ("I'm employed by Siemens", [("The user works for Siemens.", F, "employer", "Siemens", False)]),
    ("I joined Stripe last month", [("The user joined Stripe.", F, "employer", "Stripe", False)]),
    ("I work as a nurse", [("The user works as a nurse.", F, "job", "nurse", False)]),
    (
        "I work for Google as a data scientist",
        [
            ("The user works for Google.", F, "employer", "Google", False),
            ("The user works as a data scientist.", F, "job", "data scientist", False),
        ],
    ),
    (
        "I'm a software engineer at Acme",
        [
            ("The user is a software engineer.", F, "job", "software engineer", False),
            ("The user works at Acme.", F, "employer", "Acme", False),
        ],
    ),
    # preferences
    (
        "I prefer tea over coffee",
        [("The user prefers tea over coffee.", F, "preference:coffee vs tea", "tea", False)],
    ),
    ("I really love sushi", [("The user loves sushi.", F, "preference:sushi", "likes", False)]),
    (
        "I hate cilantro!",
        [("The user hates cilantro.", F, "preference:cilantro", "dislikes", False)],
    ),
    (
        "I don't like olives",
        [("The user does not like olives.", F, "preference:olives", "dislikes", False)],
    ),
    (
        "my favourite colour is blue",
        [("The user's favourite colour is blue.", F, "preference:colour", "blue", False)],
    ),
    # health and diet
    (
        "I'm allergic to peanuts and shellfish",
        [
            ("The user is allergic to peanuts.", F, "allergy:peanuts", "peanuts", False),
            ("The user is allergic to shellfish.", F, "allergy:shellfish", "shellfish", False),
        ],
    ),
    ("I'm vegetarian", [("The user is vegetarian.", F, "diet", "vegetarian", False)]),
    ("I am a vegan", [("The user is vegan.", F, "diet", "vegan", False)]),
    ("I don't eat pork", [("The user doesn't eat pork.", F, "diet:pork", "avoids", False)]),
    # age, birthday, pets, people
    ("I'm 34 years old", [("The user is 34 years old.", F, "age", "34", False)]),
    (
        "My birthday is March 3, 1990",
        [("The user's birthday is March 3, 1990.", F, "birthday", "March 3, 1990", False)],
    ),
    ("my dog is called Rex", [("The user's dog is called Rex.", F, "pet:dog", "Rex", False)]),
    ("I have a cat named Misu", [("The user has a cat named Misu.", F, "pet:cat", "Misu", False)]),
    (
        "my wife is Maria",
        [("The user's wife is Maria.", F, "relationship:partner", "Maria", False)],
    ),
    ("I love my job", [("The user loves their job.", F, "preference:job", "likes", False)]),
    ("I have a cat", [("The user has a cat.", F, "pet:cat", None, False)]),
    (
        "My partner's name is Sam and my mom is Anne",
        [
            ("The user's partner is called Sam.", F, "relationship:partner", "Sam", False),
            ("The user's mom is Anne.", F, "relationship:mother", "Anne", False),
        ],
    ),
    # remember that ...
    (
        "Please remember that my sister's name is Eva",
        [("The user's sister is called Eva.", F, "relationship:sister:eva", "Eva", False)],
    ),
    (
        "remember that I have a meeting on Friday",
        [("The user has a meeting on Friday.", F, None, None, False)],
    ),
    # decisions
    ("I decided to learn Rust", [("The user decided to learn Rust.", F, None, None, False)]),
    (
        "I've decided to switch to Postgres for my project",
        [("The user has decided to switch to Postgres for their project.", F, None, None, False)],
    ),
    # standing instructions
    (
        "Always answer in French",
        [("Always answer in French.", INS, "instruction:language", "French", False)],
    ),
    (
        "please answer in German",
        [("Answer in German.", INS, "instruction:language", "German", False)],
    ),
    (
        "From now on, reply in spanish",
        [("Reply in spanish.", INS, "instruction:language", "Spanish", False)],
    ),
    ("Never use emojis.", [("Never use emojis.", INS, None, None, False)]),
    (
        "remember to always use metric units",
        [("Always use metric units.", INS, None, None, False)],
    ),
    (
        "Always answer in French, even if I write in English.",
        [("Always answer in French.", INS, "instruction:language", "French", False)],
    ),
    # negations
    (
        "I no longer live in Lyon",
        [("The user no longer lives in Lyon.", F, "location", "Lyon", True)],
    ),
    (
        "I don't work at Acme anymore",
        [("The user no longer works at Acme.", F, "employer", "Acme", True)],
    ),
    (
        "I'm no longer vegetarian",
        [("The user is no longer vegetarian.", F, "diet", "vegetarian", True)],
    ),
    (
        "I'm not vegetarian anymore",
        [("The user is no longer vegetarian.", F, "diet", "vegetarian", True)],
    ),
    ("I'm not a doctor", [("The user is not a doctor.", F, "job", "doctor", True)]),
    (
        "I stopped working at Acme",
        [("The user no longer works at Acme.", F, "employer", "Acme", True)],
    ),
    (
        "I don't have a dog anymore",
        [("The user no longer has a dog.", F, "pet:dog", None, True)],
    ),
    ("I quit my job", [("The user quit their job.", F, "employer", None, True)]),
    ("I stopped smoking", [("The user stopped smoking.", F, "habit:smoking", "smoking", True)]),
    (
        "I no longer like sushi",
        [("The user no longer likes sushi.", F, "preference:sushi", "likes", True)],
    ),
    ("I no longer eat meat", [("The user no longer eats meat.", F, "diet:meat", "avoids", False)]),
    (
        "don't call me Bobby",
        [("The user does not want to be called Bobby.", F, "nickname", "Bobby", True)],
    ),
    # several facts in one message
    (
        "My name is Ana and I live in Lyon",
        [
            ("The user's name is Ana.", F, "name", "Ana", False),
            ("The user lives in Lyon.", F, "location", "Lyon", False),
        ],
    ),
    (
        "I live in Lyon and I work at Acme.",
        [
            ("The user lives in Lyon.", F, "location", "Lyon", False),
            ("The user works at Acme.", F, "employer", "Acme", False),
        ],
    ),
    (
        "I live in Lyon and work at Acme",
        [
            ("The user lives in Lyon.", F, "location", "Lyon", False),
            ("The user works at Acme.", F, "employer", "Acme", False),
        ],
    ),
    (
        "I don't live in Lyon, I live in Paris",
        [
            ("The user does not live in Lyon.", F, "location", "Lyon", True),
            ("The user lives in Paris.", F, "location", "Paris", False),
        ],
    ),
    (
        "Where is the station? By the way, I'm allergic to cats.",
        [("The user is allergic to cats.", F, "allergy:cats", "cats", False)],
    ),
    (
        "Can you remember that I’m allergic to cats?",
        [("The user is allergic to cats.", F, "allergy:cats", "cats", False)],
    ),
]


@pytest.mark.parametrize(("message", "expected"), POSITIVE, ids=[p[0][:40] for p in POSITIVE])
def test_rules_extract(message: str, expected: list[tuple[object, ...]]) -> None:
    assert facts(message) == expected


NEGATIVE = [
    "Where do I live?",
    "What is my name?",
    "Do I work at Acme",
    "If I lived in Paris, I would walk more.",
    "What if I moved to Paris",
    "I wish I lived in Paris",
    'He said "I live in Paris" yesterday',
    "'I live in Paris', she wrote",
    "> I live in Paris",
    "`I live in Paris`",
    "Look at this:\n```\nmy name is Ana\nI live in Paris\n```",
    "I'm a bit tired",
    "I'm a Christian",
    "I'm 5 minutes late",
    "I'm in Paris",
    "I like it",
    "I love you",
    "I like that idea",
    "I'd like a coffee",
    "I work from home",
    "I work for myself",
    "I live in fear",
    "call me later",
    "my dog is sick",
    "my wife is a doctor",
    "my name is not important",
    "I have a dog walker",
    "I joined the gym",
    "I'm going with my sister",
    "Never mind",
    "Always the same problem with this laptop",
    "remember to buy milk",
    "I don't know",
    "I'm not tired anymore",
    "Thanks, that helps!",
    "",
]


@pytest.mark.parametrize("message", NEGATIVE)
def test_rules_ignore(message: str) -> None:
    assert extract_rules([user(message)]) == []


def test_assistant_messages_are_never_mined() -> None:
    said = "My name is Ana. I live in Lyon. Always answer in French."
    assert extract_rules([assistant(said), {"role": "system", "content": said}]) == []


def test_source_index_order_and_deduplication() -> None:
    found = extract_rules(
        [
            user("I live in Lyon"),
            assistant("Nice! My name is Bot and I live in the cloud."),
            user("I work at Acme. I live in Lyon."),
        ]
    )
    assert [(c.text, c.source_index) for c in found] == [
        ("The user lives in Lyon.", 0),
        ("The user works at Acme.", 2),
    ]


def test_remember_raises_importance_and_rules_set_confidence() -> None:
    plain, remembered = (
        extract_rules([user(m)])[0] for m in ("I live in Lyon", "Remember that I live in Lyon")
    )
    assert plain.slot == remembered.slot == "location"
    assert remembered.importance >= 0.8 > plain.importance
    assert 0.7 <= plain.confidence <= 0.9


def test_candidate_is_frozen_with_documented_defaults() -> None:
    # A model answer that gives only the text gets the documented defaults.
    (c,) = parse_model_output('{"facts": [{"text": "The user lives in Lyon."}]}', 1)
    assert (c.kind, c.slot, c.value, c.negated, c.source_index) == ("fact", None, None, False, None)
    assert (c.importance, c.confidence) == (0.5, 0.7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.text = "x"  # type: ignore[misc]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.text(alphabet=st.sampled_from(list("I'm my live in at Lyon,.?!\"`\n lwork")), max_size=80)
)
def test_rules_never_crash_and_write_sentences(text: str) -> None:
    for c in extract_rules([user(text)]):
        assert c.text.endswith(".") and c.kind in {"fact", "instruction"}
        assert c.kind == "instruction" or c.text.startswith("The user")


# --- the model path -------------------------------------------------------------------------

CANNED = {
    "facts": [
        {
            "text": "The user lives in Lyon.",
            "kind": "fact",
            "slot": "Location",
            "value": "Lyon",
            "negated": False,
            "importance": 0.7,
            "confidence": 0.9,
            "source_index": 0,
        },
        {
            "text": "Answer in French.",
            "kind": "instruction",
            "slot": None,
            "value": None,
            "negated": False,
            "importance": 1.7,
            "confidence": -2,
            "source_index": 99,
        },
    ]
}
LYON = Candidate("The user lives in Lyon.", "fact", "location", "Lyon", False, 0.7, 0.9, 0)
FRENCH = Candidate("Answer in French.", "instruction", None, None, False, 1.0, 0.0, None)


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps(CANNED),
        "```json\n" + json.dumps(CANNED, indent=2) + "\n```",
        "Here is what I found:\n" + json.dumps(CANNED) + "\nHope this helps!",
        "Sure! ```\n" + json.dumps(CANNED) + "``` Done.",
    ],
    ids=["bare", "fenced", "prose", "plain-fence"],
)
def test_parse_accepts_wrapped_json_and_clamps(raw: str) -> None:
    assert parse_model_output(raw, n_messages=2) == [LYON, FRENCH]


def test_parse_validates_and_drops_bad_items() -> None:
    raw = json.dumps(
        {
            "facts": [
                {"text": "   "},
                {"text": 42},
                "The user has a cat.",
                {"kind": "fact"},
                ["not", "an", "object"],
                {"text": "The user is 34.", "value": 34, "importance": "high", "negated": "true"},
                {"text": "the user is 34.", "importance": 0.1},
                {"text": "The user likes jazz.", "source_index": True, "confidence": float("nan")},
            ]
        }
    )
    found = parse_model_output(raw, n_messages=3)
    assert [c.text for c in found] == [
        "The user has a cat.",
        "The user is 34.",
        "The user likes jazz.",
    ]
    assert (found[1].value, found[1].importance, found[1].negated) == ("34", 0.5, True)
    assert (found[2].source_index, found[2].confidence) == (None, 0.7)


def test_parse_accepts_a_bare_list_and_an_empty_answer() -> None:
    assert parse_model_output('[{"text": "The user is vegan."}]', 1) == [
        Candidate("The user is vegan.")
    ]
    assert parse_model_output('{"facts": []}', 1) == []


@pytest.mark.parametrize("raw", ["", "no facts here", "{facts: [}", '"just a string"', "[1, 2"])
def test_parse_rejects_garbage(raw: str) -> None:
    with pytest.raises(ExtractionError, match="^The model's extraction answer was not valid JSON"):
        parse_model_output(raw, n_messages=1)


def test_schema_describes_every_candidate_field() -> None:
    item = EXTRACTION_SCHEMA["properties"]["facts"]["items"]
    fields = {f.name for f in dataclasses.fields(Candidate)}
    assert set(item["properties"]) == set(item["required"]) == fields
    assert EXTRACTION_SCHEMA["required"] == ["facts"]
    # Sent as response_format: it must survive JSON unchanged (no tuples, no objects).
    assert json.loads(json.dumps(EXTRACTION_SCHEMA)) == EXTRACTION_SCHEMA


def test_prompt_has_task_schema_known_facts_and_numbered_buffer() -> None:
    prompt = build_extraction_prompt(
        [user("I live in Lyon"), assistant("Noted.")], known_facts=["The user's name is Ana."]
    )
    assert [m["role"] for m in prompt] == ["system", "user"]
    system, body = prompt[0]["content"], prompt[1]["content"]
    assert "ABOUT THE USER" in system and '"source_index"' in system and "The user" in system
    assert "[0] user: I live in Lyon" in body and "[1] assistant: Noted." in body
    assert "- The user's name is Ana." in body
    assert "Already known" not in build_extraction_prompt([user("hi")])[1]["content"]


def test_extract_with_model_passes_the_prompt_and_parses() -> None:
    seen: list[list[dict[str, str]]] = []

    def complete(prompt: list[dict[str, str]]) -> str:
        seen.append(prompt)
        return "```json\n" + json.dumps(CANNED) + "\n```"

    messages = [user("I live in Lyon. Always answer in French."), assistant("D'accord.")]
    assert extract_with_model(complete, messages, ["x"]) == [LYON, FRENCH]
    assert seen == [build_extraction_prompt(messages, ["x"])]


def test_extract_with_model_drops_facts_taken_from_the_assistant() -> None:
    answer = {
        "facts": [{"text": "The user is a bot.", "source_index": 1}, {"text": "The user is Ana."}]
    }
    found = extract_with_model(lambda p: json.dumps(answer), [user("hi"), assistant("I'm a bot")])
    assert [c.text for c in found] == ["The user is Ana."]


def test_extract_with_model_garbage_is_an_extraction_error() -> None:
    with pytest.raises(ExtractionError, match="not valid JSON"):
        extract_with_model(lambda p: "I'm sorry, I can't do that.", [user("I live in Lyon")])


def test_extract_with_model_wraps_failures_of_complete() -> None:
    def complete(prompt: list[dict[str, str]]) -> str:
        raise TimeoutError("the provider timed out")

    with pytest.raises(ExtractionError, match="the provider timed out") as info:
        extract_with_model(complete, [user("I live in Lyon")])
    assert isinstance(info.value.__cause__, TimeoutError)
