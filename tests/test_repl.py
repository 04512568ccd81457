"""The REPL driven for real through a pseudo-terminal (pexpect)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest
from repl_harness import PROMPT, spawn


def test_slash_commands_stream_and_exit(fake_llm: Any, mem_home: Path, cli: Any) -> None:
    child = spawn(mem_home, fake_llm.env(), "chat", "--model", "openai/x")
    child.sendline("/help")
    child.expect_exact("/remember")
    child.expect_exact(PROMPT)
    child.sendline("/remember My dog is called Rex")
    child.expect_exact("+ remembered: My dog is called Rex")
    child.expect_exact(PROMPT)
    child.sendline("/instruct answer in one sentence")
    child.expect_exact("+ remembered: answer in one sentence")
    child.expect_exact(PROMPT)
    fake_llm.enqueue("Your dog is **Rex**.", chunk_size=4)
    child.sendline("What is my dog called?")
    child.expect_exact("Your dog is **Rex**.")
    child.expect_exact(PROMPT)
    child.sendline("/memories")
    child.expect_exact("instruction: answer in one sentence")
    child.expect_exact(PROMPT)
    child.sendline("/bogus")
    child.expect_exact("Error: Unknown command /bogus: type /help for the list.")
    child.expect_exact(PROMPT)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    sent = [r for r in fake_llm.chat_requests() if r.get("stream")][-1]["messages"][0]
    assert "answer in one sentence" in sent["content"]
    assert "My dog is called Rex" in sent["content"]
    history = (mem_home / "history").read_text()
    assert "What is my dog called?" in history


def test_ctrl_c_cancels_reply_and_keeps_partial(fake_llm: Any, mem_home: Path, cli: Any) -> None:
    child = spawn(mem_home, dict(fake_llm.env(), MEM_MODEL="openai/x"))  # bare `mem`
    words = " ".join(f"word{i}" for i in range(200))
    # ~7 s of streaming: the interrupt lands mid-reply even on a loaded machine.
    fake_llm.enqueue(words, chunk_size=6, delay=0.2)
    child.sendline("Tell me a long story")
    child.expect_exact("word3")
    child.sendintr()
    child.expect_exact("[cancelled: the partial reply is kept]")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    logged = json.loads(cli("list", "--kind", "message", "--json").stdout)
    partial = [m for m in logged if m["content"].startswith("word0")]
    assert partial and len(partial[0]["content"]) < len(words)


def test_no_model_repl_still_has_memory_commands(mem_home: Path) -> None:
    child = spawn(mem_home, {"MEM_NO_LOCAL_MODEL": "1"})  # never pick the offline model
    child.sendline("/remember I like tea")
    child.expect_exact("+ remembered: I like tea")
    child.sendline("hello")
    child.expect_exact("Error: No model configured")
    child.sendline("/undo")
    child.expect_exact("- removed: I like tea")
    child.sendline("/exit")
    child.expect(pexpect.EOF)


@pytest.mark.parametrize(
    ("cmd", "message"),
    [
        ("/forget abc", "Error: Usage: /forget ID…, with numeric ids from /memories."),
        ("/search", "Error: Usage: /search QUERY: see /help."),
    ],
)
def test_repl_command_errors(mem_home: Path, cmd: str, message: str) -> None:
    child = spawn(mem_home, {})
    child.sendline(cmd)
    child.expect_exact(message)
    child.sendline("/exit")
    child.expect(pexpect.EOF)


def test_multiline_paste_is_one_message(fake_llm: Any, mem_home: Path) -> None:
    child = spawn(mem_home, dict(fake_llm.env(), MEM_MODEL="openai/x"))
    child.send("\x1b[200~first line\nsecond line\x1b[201~")
    child.send("\r")
    child.expect_exact("OK")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    sent = [r for r in fake_llm.chat_requests() if r.get("stream")][-1]["messages"][-1]
    assert sent["content"] == "first line\nsecond line"


def test_new_starts_another_conversation(fake_llm: Any, mem_home: Path, cli: Any) -> None:
    child = spawn(mem_home, dict(fake_llm.env(), MEM_MODEL="openai/x"))
    child.sendline("first conversation message")
    child.expect_exact("OK")
    child.expect_exact(PROMPT)
    child.sendline("/new")
    child.expect(r"new conversation (\S+)\r?\n")
    new_id = child.match.group(1)
    child.expect_exact(PROMPT)
    child.sendline("second conversation message")
    child.expect_exact("OK")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    convs = cli.json("conversations")
    assert len(convs) == 2 and new_id in {c["id"] for c in convs}
    mine = [m["content"] for m in cli.json("list", "--kind", "message", "--conversation", new_id)]
    assert "second conversation message" in mine and "first conversation message" not in mine
    # The model got no earlier turn: the new conversation starts empty.
    sent = [r for r in fake_llm.chat_requests() if r.get("stream")][-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user"]
    assert sent[-1]["content"] == "second conversation message"


def test_budget_shows_the_prompt_without_calling_the_model(
    fake_llm: Any, mem_home: Path, cli: Any
) -> None:
    cli("remember", "My dog is called Rex")
    child = spawn(mem_home, dict(fake_llm.env(), MEM_MODEL="openai/x"))
    child.sendline("/budget what is my dog called")
    child.expect(r"memories +\d+ tokens +1 items")
    child.expect_exact("My dog is called Rex (#1,")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    assert fake_llm.chat_requests() == []


def test_model_shows_and_switches(fake_llm: Any, mem_home: Path) -> None:
    child = spawn(mem_home, dict(fake_llm.env(), MEM_MODEL="openai/x"))
    child.sendline("/model")
    child.expect_exact("model: openai/x")
    child.expect_exact(PROMPT)
    child.sendline("/model openai/other-model")
    child.expect_exact("model: openai/other-model")
    child.expect_exact(PROMPT)
    child.sendline("hello again")
    child.expect_exact("OK")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    streamed = [r for r in fake_llm.chat_requests() if r.get("stream")]
    assert [r["model"] for r in streamed] == ["other-model"]


@pytest.mark.parametrize("no_stream", [False, True])
def test_no_stream_prints_the_reply_at_once(fake_llm: Any, mem_home: Path, no_stream: bool) -> None:
    """A stream that breaks after some words: streamed, those words are on the
    terminal already; with --no-stream nothing of the reply was printed."""
    fake_llm.enqueue_cut_stream("The partial answer")
    flag = ["--no-stream"] if no_stream else []
    env = dict(os.environ, **fake_llm.env(), MEM_HOME=str(mem_home))
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "ask", "--model", "openai/x", *flag, "question"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 5, out.stderr
    assert out.stdout == ("" if no_stream else "The partial answer")
