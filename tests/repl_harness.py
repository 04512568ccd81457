"""`mem` run for real in a pseudo-terminal (pexpect), as the REPL tests drive it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pexpect

PROMPT = "you>"


def spawn(mem_home: Path, extra_env: dict[str, str], *args: str) -> Any:
    """`python -m cli.main ARGS` with ``MEM_HOME`` and a plain terminal (no colour, no
    cursor-position requests), once its first prompt is shown."""
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
