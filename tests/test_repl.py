"""The REPL driven for real through a pseudo-terminal (pexpect)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

PROMPT = "you>"


def spawn(mem_home: Path, extra_env: dict[str, str], *args: str) -> Any:
    env = dict(
        os.environ,
        MEM_HOME=str(mem_home),
        NO_COLOR="1",
        TERM="xterm",
        PROMPT_TOOLKIT_NO_CPR="1",
        **extra_env,
    )
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cli.main", *args],
        env=env,
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 160),
    )
    child.expect_exact(PROMPT)
    return child


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
    fake_llm.enqueue(words, chunk_size=6, delay=0.05)
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


@pytest.mark.parametrize("cmd", ["/forget abc", "/search"])
def test_repl_command_errors(mem_home: Path, cmd: str) -> None:
    child = spawn(mem_home, {})
    child.sendline(cmd)
    child.expect_exact("Error: Usage: /")
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
