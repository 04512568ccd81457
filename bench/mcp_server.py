"""Benchmark `mem mcp` over stdio, through the SDK's own client.

    .venv/bin/python bench/mcp_server.py                 # 100,000 memories
    .venv/bin/python bench/mcp_server.py --size 10000

Fills a temporary database with bench/search.py's bulk path (the same seeded
synthetic memories), then prints:

* server start to first answer: a new `mem mcp` process spawned by the client,
  to the initialize reply and to the first `search` result (median of 5); and
  over raw JSON-RPC, the wall time and the server's own CPU time up to the
  initialize reply (the CPU time does not grow with other processes' load);
* the `search` tool-call round trip, p50 and p95 over 200 queries after 20
  warm-ups, on one running server (JSON-RPC over the pipes, tool, engine);
* whether the server process imported litellm (read from ``-X importtime``),
  and what importing the SDK costs it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # the engine and the CLI; HERE (bench/) is already first

from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402
from mcp.types import Implementation  # noqa: E402
from search import WARMUP, Corpus, fill, queries  # noqa: E402  (bench/search.py)

STARTS = 5


def _params(db: Path, home: Path, *python: str, root: Path = ROOT) -> StdioServerParameters:
    env = {"PYTHONPATH": str(root), "MEM_HOME": str(home)}
    args = [*python, "-m", "cli.main", "mcp", "--db", str(db)]
    return StdioServerParameters(command=sys.executable, args=args, env=env)


async def _start(db: Path, home: Path, query: str, log: Any, *python: str) -> tuple[float, float]:
    """Seconds from spawning the server to its initialize reply and first search."""
    started = time.perf_counter()
    async with stdio_client(_params(db, home, *python), errlog=log) as (read, write):
        info = Implementation(name="bench", version="1")
        async with ClientSession(read, write, client_info=info) as session:
            await session.initialize()
            ready = time.perf_counter() - started
            result = await session.call_tool("search", {"query": query})
            assert not result.is_error, result.content
            return ready, time.perf_counter() - started


async def _round_trips(db: Path, home: Path, qs: list[str]) -> list[float]:
    times: list[float] = []
    async with stdio_client(_params(db, home)) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            for i, query in enumerate(qs):
                t = time.perf_counter()
                result = await session.call_tool("search", {"query": query, "limit": 10})
                ms = (time.perf_counter() - t) * 1000
                assert not result.is_error, result.content
                if i >= WARMUP:
                    times.append(ms)
    return times


def _cpu_start(db: Path, home: Path, root: Path = ROOT) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, from /proc) of a new server up to its
    initialize reply, over raw JSON-RPC. On a shared machine the wall time swells
    with the load; the CPU time is what the start costs an idle machine."""
    params = _params(db, home, root=root)
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        },
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        [params.command, *params.args],
        env=params.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps(init) + "\n").encode())
    proc.stdin.flush()
    reply = proc.stdout.readline()
    wall = time.perf_counter() - started
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    proc.stdin.close()
    proc.wait()
    assert b'"result"' in reply, reply[:300]
    return wall, cpu


def _sdk_floor() -> float:
    """CPU seconds of a bare ``python -c "import mcp.server.mcpserver"``: the part
    of the start that is the SDK's and Python's, not mem's."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import mcp.server.mcpserver, resource, sys; "
            "r = resource.getrusage(resource.RUSAGE_SELF); "
            "sys.stdout.write(str(r.ru_utime + r.ru_stime))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(proc.stdout)


def _paired_starts(db: Path, home: Path, base: Path, rounds: int) -> None:
    """Head, the baseline and the bare SDK, started in turn, ``rounds`` times:
    on a shared machine only figures taken side by side compare."""
    head: list[float] = []
    old: list[float] = []
    floor: list[float] = []
    for _ in range(rounds):
        head.append(_cpu_start(db, home)[1])
        old.append(_cpu_start(db, home, root=base)[1])
        floor.append(_sdk_floor())
    h, b, f = (statistics.median(x) for x in (head, old, floor))
    print(
        f"paired      server CPU to initialize reply: head {h:.3f} s, base {b:.3f} s "
        f"(head/base {h / b:.3f}); importing the SDK alone {f:.3f} s, so mem adds "
        f"{h - f:.3f} s (medians of {rounds} rounds, in turn)"
    )


def _imports(log: Path) -> tuple[bool, float]:
    """From ``-X importtime`` lines: was litellm imported, and the SDK's cost (s)."""
    litellm, sdk = False, 0.0
    for line in log.read_text().splitlines():
        if not line.startswith("import time:"):
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        if name.split(".")[0] == "litellm":
            litellm = True
        if name in ("mcp", "mcp.server.mcpserver"):
            sdk = max(sdk, int(cumulative) / 1e6)
    return litellm, sdk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--base", type=Path, help="a checkout to compare the start against (a git worktree)"
    )
    parser.add_argument("--rounds", type=int, default=9, help="paired start rounds (--base)")
    opts = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mem-bench-mcp-"))
    try:
        db = home / "bench.db"
        corpus = Corpus(opts.seed)
        seconds, _ = fill(db, corpus, opts.size)
        print(f"== {opts.size:,} memories ({os.path.getsize(db) / 1e6:.0f} MB, {seconds:.0f} s)")
        qs = [text for text, _ in queries(corpus, db)]
        if opts.base is not None:
            _paired_starts(db, home, opts.base.resolve(), opts.rounds)
        with open(os.devnull, "w") as quiet:
            starts = [anyio.run(_start, db, home, qs[i], quiet) for i in range(STARTS)]
        ready = statistics.median(s[0] for s in starts)
        first = statistics.median(s[1] for s in starts)
        print(
            f"start       initialize reply {ready:.3f} s, first search answer {first:.3f} s "
            f"(median of {STARTS} new server processes; target <= 0.5 s)"
        )
        raw = [_cpu_start(db, home) for _ in range(STARTS)]
        print(
            f"start       initialize reply {statistics.median(w for w, _ in raw):.3f} s wall, "
            f"{statistics.median(c for _, c in raw):.2f} s of the server's CPU (user + system; "
            f"raw JSON-RPC, median of {STARTS}; load average {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores)"
        )
        times = anyio.run(_round_trips, db, home, qs)
        p95 = statistics.quantiles(times, n=20)[-1]
        print(
            f"search      round trip over stdio p50 {statistics.median(times):.1f} ms, "
            f"p95 {p95:.1f} ms ({len(times)} calls after {WARMUP} "
            "warm-ups; target p50 <= 20 ms)"
        )
        log = home / "importtime.log"
        with log.open("w") as errlog:
            anyio.run(_start, db, home, qs[0], errlog, "-X", "importtime")
        litellm, sdk = _imports(log)
        print(
            f"imports     litellm {'IMPORTED' if litellm else 'not imported'} by the server "
            f"(start + initialize + search); the mcp SDK took {sdk:.2f} s to import"
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
