"""The REPL's coloured path: every other test sets NO_COLOR, so the Markdown
rendering through Rich only runs here, in a real pseudo-terminal."""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path
from typing import Any

import pexpect

PROMPT = "you>"
REPLY = "Your dog is **Rex**.\n\n- walks at *seven*\n- eats `kibble`\n"


def test_markdown_reply_is_styled_in_colour(fake_llm: Any, mem_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(
        fake_llm.env(),
        MEM_HOME=str(mem_home),
        MEM_MODEL="openai/x",
        TERM="xterm-256color",
        PROMPT_TOOLKIT_NO_CPR="1",
    )
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cli.main"],
        env=env,
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 120),
    )
    child.expect_exact(PROMPT)
    fake_llm.enqueue(REPLY, chunk_size=5)
    child.logfile_read = io.StringIO()  # everything the terminal shows from here on
    child.sendline("What is my dog called?")
    child.expect_exact("kibble")
    child.expect_exact(PROMPT)
    shown = child.logfile_read.getvalue()
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    # Rendered, not echoed: no Markdown markers left, bold/italic/code styled with
    # SGR escapes, list items drawn as bullets.
    assert "**Rex**" not in shown and "*seven*" not in shown and "`kibble`" not in shown
    assert re.search(r"\x1b\[[0-9;]*1[0-9;]*mRex", shown), repr(shown)
    assert re.search(r"\x1b\[[0-9;]*3[0-9;]*mseven", shown), repr(shown)
    assert re.search(r"\x1b\[[0-9;]*m[^\x1b]*kibble", shown), repr(shown)
    assert "•" in shown
