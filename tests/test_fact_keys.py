"""Fact keys (`mem import --extract`) against the fake OpenAI-compatible server, and
provider embeddings through the same server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memory import MemoryStore
from memory.errors import ExtractionError
from memory.formation.fact_keys import Turn, extract_fact_keys, prompt_messages, windows
from memory.lifecycle.transfer import import_file

DATA = Path(__file__).resolve().parent / "data" / "eval_small"
MESSAGES = str(DATA / "messages.jsonl")
MODEL = "openai/gpt-4o-mini"


def facts(*items: tuple[str, int]) -> str:
    """An extraction answer: (text, source_index) pairs."""
    return json.dumps(
        {
            "facts": [
                {
                    "text": text,
                    "kind": "fact",
                    "slot": None,
                    "value": None,
                    "negated": False,
                    "importance": 0.6,
                    "confidence": 0.9,
                    "source_index": index,
                }
                for text, index in items
            ]
        }
    )


# The fixture's three windows, in import order: conv-a session 1, conv-a session 2, conv-b.
ANSWERS = [
    facts(("Ana adopted a pet beagle named Rex on 28 February 2023.", 2)),
    facts(("Bo takes pottery classes at the community centre since March 2023.", 0)),
    facts(("Cleo works at the bakery on Elm Street.", 0), ("Dan is moving to Oslo.", 3)),
]


def turn(i: int, stamp: str, speaker: str | None = "Ana") -> Turn:
    return Turn(i, "user", speaker, f"text {i}", stamp, f"D:{i}")


def test_windows_follow_sessions_and_pack_single_turns() -> None:
    day1, day2 = "2023-03-01T10:00:00+00:00", "2023-04-02T10:00:00+00:00"
    long_session = [turn(i, day1) for i in range(12)] + [turn(12 + i, day2) for i in range(3)]
    got = windows(long_session, window=10, max_session=5)
    assert [[t.id for t in w] for w in got] == [
        [0, 1, 2, 3, 4],
        [5, 6, 7, 8, 9],
        [10, 11],
        [12, 13, 14],
    ]
    chat_log = [turn(i, f"2023-03-01T10:{i:02d}:00+00:00") for i in range(23)]
    assert [len(w) for w in windows(chat_log, window=10)] == [10, 10, 3]


def test_prompt_names_the_speakers_and_dates() -> None:
    turns = [
        turn(0, "2023-03-01T10:00:00+00:00", "Ana"),
        turn(1, "2023-03-01T10:00:00+00:00", "Bo"),
    ]
    chat, subject = prompt_messages(turns)
    assert subject == "Ana and Bo"
    assert chat == [
        {"role": "user", "content": "Ana (1 March 2023): text 0"},
        {"role": "user", "content": "Bo (1 March 2023): text 1"},
    ]
    plain = [Turn(0, "user", None, "I live in Lyon", "2023-03-01T10:00:00+00:00", None)]
    assert prompt_messages(plain) == ([{"role": "user", "content": "I live in Lyon"}], None)


def test_import_extract_indexes_facts_that_point_at_their_messages(fake_llm: Any, cli: Any) -> None:
    for answer in ANSWERS:
        fake_llm.enqueue(answer)
    out = cli("import", MESSAGES, "--extract", "--model", MODEL)
    assert out.stdout.splitlines() == [
        "Imported 17 messages (0 already there) and 0 memories (0 already there).",
        "Indexed 4 fact keys from 3 windows of 2 conversations.",
    ]
    requests = fake_llm.chat_requests()
    assert len(requests) == 3
    system, user = (m["content"] for m in requests[0]["messages"][:2])
    assert "durable facts about Ana and Bo" in system
    assert "[2] user: Ana (1 March 2023): We brought home a little beagle yesterday" in user

    hits = cli.json("search", "pet adopted", "--conversation", "conv-a", "--kind", "fact")
    assert hits[0]["content"] == "Ana adopted a pet beagle named Rex on 28 February 2023."
    hit = hits[0]
    assert hit["source"] == "fact-key" and hit["external_id"] == "D1:3"
    assert hit["created_at"] == "2023-03-01T10:00:00+00:00"
    assert hit["metadata"]["fact_key"] is True
    assert hit["metadata"]["source_external_ids"] == ["D1:3"]
    shown = cli.json("show", str(hit["id"]))
    assert shown["source_message"]["external_id"] == "D1:3"
    assert shown["source_message"]["content"].startswith("We brought home a little beagle")
    assert shown["metadata"]["source_message_ids"] == [shown["source_message"]["id"]]

    # Idempotent: the same import again reads nothing and asks the model nothing.
    again = cli("import", MESSAGES, "--extract", "--model", MODEL)
    assert again.stdout.splitlines()[1] == "Indexed 0 fact keys from 0 windows of 2 conversations."
    assert len(fake_llm.chat_requests()) == 3
    assert len(cli.json("list", "--kind", "fact")) == 4


def test_extract_covers_a_file_imported_before_and_reads_stdin(fake_llm: Any, cli: Any) -> None:
    cli("import", MESSAGES)
    for answer in ANSWERS:
        fake_llm.enqueue(answer)
    data = Path(MESSAGES).read_text()
    report = cli.json("import", "-", "--extract", "--model", MODEL, input=data)
    assert report["messages_added"] == 0 and report["messages_skipped"] == 17
    assert report["fact_keys"]["facts_added"] == 4 and report["fact_keys"]["windows"] == 3


def test_the_same_fact_twice_is_one_key_with_both_sources(fake_llm: Any, cli: Any) -> None:
    rex = "Ana's dog Rex is a beagle."
    fake_llm.enqueue(facts((rex, 2)))
    fake_llm.enqueue(facts((rex.upper(), 3), ("Bo's first pottery bowl came out lopsided.", 2)))
    fake_llm.enqueue(facts())
    cli("import", MESSAGES, "--extract", "--model", MODEL)
    keys = cli.json("list", "--kind", "fact")
    assert sorted(k["content"] for k in keys) == [
        "Ana's dog Rex is a beagle.",
        "Bo's first pottery bowl came out lopsided.",
    ]
    rex_key = next(k for k in keys if k["content"] == rex)
    assert rex_key["external_id"] == "D1:3"
    assert rex_key["metadata"]["source_external_ids"] == ["D1:3", "D2:4"]
    assert len(rex_key["metadata"]["source_message_ids"]) == 2


def test_mem_eval_counts_every_source_of_a_fact_key(
    fake_llm: Any, cli: Any, tmp_path: Path
) -> None:
    fake_llm.enqueue(facts(("Ana's beagle Rex chewed her cello books.", 2)))
    fake_llm.enqueue(facts(("Ana's beagle Rex chewed her cello books.", 3)))
    fake_llm.enqueue(facts())
    cli("import", MESSAGES, "--extract", "--model", MODEL)
    folder = tmp_path / "own"
    folder.mkdir()
    question = {
        "conversation": "conv-a",
        "question": "What did the beagle chew?",
        "evidence": ["D1:3", "D2:4"],
        "category": 1,
    }
    (folder / "questions.jsonl").write_text(json.dumps(question) + "\n")
    query = question["question"]
    top = cli.json("search", query, "--conversation", "conv-a", "--limit", "1")
    assert top[0]["source"] == "fact-key"
    result = cli.json("eval", str(folder), "--live")["results"][0]
    assert result["recall"]["1"] == 1.0  # both evidence ids, from the one fact key
    assert result["reciprocal_rank"] == 1.0


def test_mem_eval_extract_measures_with_fact_keys(fake_llm: Any, cli: Any) -> None:
    for answer in ANSWERS:
        fake_llm.enqueue(answer)
    report = cli.json("eval", str(DATA), "--extract", "--model", MODEL)
    assert report["fact_keys"]["facts_added"] == 4
    assert report["database"] == "temporary"
    assert cli.json("list") == []  # the live database was not touched


def test_failed_windows_are_reported_and_retried(fake_llm: Any, cli: Any) -> None:
    fake_llm.enqueue_error(400, "bad request")
    fake_llm.enqueue("this is not JSON")
    fake_llm.enqueue(ANSWERS[2])
    out = cli("import", MESSAGES, "--extract", "--model", MODEL)
    assert out.stderr.startswith("Warning: fact extraction failed for 2 of 3 windows (first: ")
    assert out.stderr.rstrip().endswith("run the same import again to retry them.")
    assert "Imported 17 messages" in out.stdout
    assert cli.json("stats")["messages"] == 17
    fake_llm.enqueue(ANSWERS[0])
    fake_llm.enqueue(ANSWERS[1])
    again = cli("import", MESSAGES, "--extract", "--model", MODEL)
    assert again.stderr == ""
    assert again.stdout.splitlines()[1] == "Indexed 2 fact keys from 2 windows of 2 conversations."
    assert len(fake_llm.chat_requests()) == 5


def test_repeated_failures_stop_the_pass(mem_home: Path, tmp_path: Path) -> None:
    rows = [
        {"conversation": "c", "role": "user", "speaker": "Ana", "content": f"turn {i}",
         "timestamp": f"2023-03-{i + 1:02d}T10:00:00", "id": f"D{i}:1"}
        for i in range(12)
    ]  # fmt: skip
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    calls: list[int] = []

    def broken(messages: list[dict[str, str]]) -> str:
        calls.append(1)
        raise ExtractionError("The model is down.")

    with MemoryStore.open(mem_home / "mem.db") as store:
        import_file(store, str(path))
        report = extract_fact_keys(store, broken, ["c"], window=2)
    assert (report.windows, report.failed, report.not_attempted) == (6, 3, 3)
    assert len(calls) == 3
    assert report.first_error == "The model is down."


def test_extract_without_a_model_is_a_one_line_error(cli: Any) -> None:
    out = cli("import", MESSAGES, "--extract", code=5)
    assert out.stderr == (
        "Error: No model configured for --extract: pass --model (e.g. --model "
        'openai/gpt-4o-mini), set MEM_MODEL, or put model = "..." in the config file.\n'
    )
    assert cli.json("stats")["messages"] == 0  # checked before importing anything


def test_provider_embeddings_through_the_server(fake_llm: Any, cli: Any) -> None:
    cli("import", MESSAGES)
    out = cli("reindex", "--embedder", "openai/text-embedding-3-small")
    assert out.stdout == "Reindexed 17 memories with litellm:openai/text-embedding-3-small.\n"
    assert cli.json("stats")["embedder_dim"] == fake_llm.embedding_dim
    before = len(fake_llm.embedding_requests())
    hits = cli.json("search", "beagle Rex", "--conversation", "conv-a")
    assert hits[0]["external_id"] == "D1:3"
    queries = fake_llm.embedding_requests()[before:]
    assert [q["input"] for q in queries] == [["beagle Rex"]]
    assert queries[0]["model"] == "text-embedding-3-small"
    # New memories are embedded by the provider too.
    cli("remember", "Zyxwv is a made-up word")
    assert fake_llm.embedding_requests()[-1]["input"] == ["Zyxwv is a made-up word"]
    assert cli.json("search", "zyxwv")[0]["content"] == "Zyxwv is a made-up word"
