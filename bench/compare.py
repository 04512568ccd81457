"""Run one bench script on this checkout and on an older one, alternately, and print ratios.

    .venv/bin/python bench/compare.py --base ../old-checkout --rounds 3 -- search.py --sizes 100000
    .venv/bin/python bench/compare.py --base ../old-checkout -- turn.py --n 10000

The machine is shared, so a figure is only comparable with one measured beside it: each
round runs the base's copy of the script, then this checkout's, each with its own code on
PYTHONPATH, and the medians over the rounds are compared. Every line the script prints is
matched between the two by its words (its numbers blanked out); each number on it is
shown as base -> head with the ratio head/base (for times, below 1 is faster; for rates,
above 1 is faster — the line's own unit says which).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def run(checkout: Path, script: str, args: list[str]) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    done = subprocess.run(
        [sys.executable, str(checkout / "bench" / script), *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"{checkout}: bench/{script} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout.splitlines()


def numbers(line: str) -> tuple[str, list[float]]:
    key = " ".join(NUMBER.sub("#", line).split())
    return key, [float(n.replace(",", "")) for n in NUMBER.findall(line)]


def collect(rounds: list[list[str]]) -> dict[str, list[list[float]]]:
    """label -> one list of numbers per round (the nth occurrence of a label kept apart)."""
    out: dict[str, list[list[float]]] = {}
    for lines in rounds:
        seen: dict[str, int] = {}
        for line in lines:
            key, values = numbers(line)
            if not values:
                continue
            seen[key] = seen.get(key, 0) + 1
            out.setdefault(f"{key}\x00{seen[key]}", []).append(values)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="the older checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("script", help="a script under bench/, e.g. search.py")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    ns = parser.parse_args()
    args = ns.args[1:] if ns.args[:1] == ["--"] else ns.args
    base_runs, head_runs = [], []
    for r in range(ns.rounds):
        print(f"round {r + 1}/{ns.rounds} …", file=sys.stderr, flush=True)
        base_runs.append(run(ns.base.resolve(), ns.script, args))
        head_runs.append(run(ROOT, ns.script, args))
    base, head = collect(base_runs), collect(head_runs)
    print(f"bench/{ns.script} {' '.join(args)}: medians of {ns.rounds} alternating rounds")
    print(f"base {ns.base.resolve()}  head {ROOT}")
    for label, head_values in head.items():
        text = label.split("\x00")[0]
        if label not in base:
            print(f"  {text}  (head only)")
            continue
        cols = []
        for i in range(min(len(v) for v in head_values + base[label])):
            b = statistics.median(v[i] for v in base[label])
            h = statistics.median(v[i] for v in head_values)
            ratio = f"{h / b:.3f}" if b else "-"
            cols.append(f"{b:g} -> {h:g} (x{ratio})")
        print(f"  {text}\n      " + "; ".join(cols))


if __name__ == "__main__":
    main()
