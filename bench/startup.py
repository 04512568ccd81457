"""Cold-process start-up of `mem --help` and `mem --version`: median of N runs.

    python bench/startup.py [--runs 9] [--baseline /path/to/older/checkout]

Each run is a new interpreter (``python -m cli.main``) with this checkout (or
the baseline) first on PYTHONPATH; with a baseline the two alternate run by
run, so both see the same machine load, and the ratio is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def once(tree: Path, args: list[str], home: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree), MEM_HOME=home)
    started = time.perf_counter()
    # cwd=tree: `python -m` puts the working directory first on sys.path, ahead of
    # PYTHONPATH, so run from anywhere else both sides would time the same code.
    subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--baseline", type=Path, help="an older checkout to compare with")
    opts = parser.parse_args()
    trees = {"this": HERE} | ({"baseline": opts.baseline.resolve()} if opts.baseline else {})
    with tempfile.TemporaryDirectory() as home:
        for args in (["--help"], ["--version"]):
            times: dict[str, list[float]] = {name: [] for name in trees}
            for tree in trees.values():  # warm the file cache once, untimed
                once(tree, args, home)
            for _ in range(opts.runs):
                for name, tree in trees.items():
                    times[name].append(once(tree, args, home))
            medians = {name: statistics.median(t) for name, t in times.items()}
            line = "  ".join(f"{name} {m * 1000:.0f} ms" for name, m in medians.items())
            if "baseline" in medians:
                line += f"  ratio {medians['this'] / medians['baseline']:.3f}"
            print(f"mem {' '.join(args):<10} median of {opts.runs}: {line}")


if __name__ == "__main__":
    main()
