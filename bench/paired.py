"""Search latency of this checkout against an older one, query by query.

    .venv/bin/python bench/paired.py --base ../old-checkout [--size 100000]

On a shared machine two runs minutes apart see different loads, so even
alternating whole runs (bench/compare.py) swings by ±10 %. Here each checkout
keeps one worker process with its own copy of bench/search.py's store (the same
seeded memories, filled by that checkout's code), and every query is timed in
both workers back to back, in alternating order: both see the same moment's
load. Printed per query set (bench/search.py's own words, one conversation,
paraphrased): the median latency of each side, their ratio, and the median of
the per-query ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]

# Runs inside each worker, with its checkout first on sys.path.
WORKER = r"""
import json, sys, time
tree, db, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path[:0] = [tree, tree + "/bench"]
import search as S
from pathlib import Path
corpus = S.Corpus(1)
db = Path(db)
S.fill(db, corpus, size)
sets = {
    "own words, whole store": [(t, None) for t, _ in S.queries(corpus, db)],
    "own words, one conversation": S.queries(corpus, db),
    "paraphrased, whole store": S.paraphrased(corpus),
}
store = S.MemoryStore.open(db)
retrieval = getattr(S, "retrieval", None)
if retrieval is not None and hasattr(retrieval, "find"):
    def run(text, conv):
        retrieval.find(store, text, limit=10, conversation=conv)
else:  # before the seam: the search verb was a MemoryStore method
    def run(text, conv):
        store.search(text, limit=10, conversation=conv)
print(json.dumps({k: len(v) for k, v in sets.items()}), flush=True)
for line in sys.stdin:
    name, i = json.loads(line)
    text, conv = sets[name][i]
    t = time.perf_counter()
    run(text, conv)
    print((time.perf_counter() - t) * 1000, flush=True)
"""


class Worker:
    def __init__(self, tree: Path, db: Path, size: int) -> None:
        env = dict(os.environ, PYTHONPATH=str(tree))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tree), str(db), str(size)],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.sets: dict[str, int] = json.loads(self._line())

    def _line(self) -> str:
        out: IO[str] | None = self.proc.stdout
        assert out is not None
        line = out.readline()
        if not line:
            sys.exit(f"a worker exited ({self.proc.wait()})")
        return line

    def time(self, name: str, i: int) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps([name, i]) + "\n")
        self.proc.stdin.flush()
        return float(self._line())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="the older checkout")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=3, help="times each query is run")
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mem-bench-paired-"))
    base = Worker(args.base.resolve(), tmp / "base.db", args.size)
    head = Worker(ROOT, tmp / "head.db", args.size)
    print(f"bench/paired.py: {args.size:,} memories; base {args.base.resolve()}, head {ROOT}")
    try:
        for name, n in head.sets.items():
            times: dict[str, list[float]] = {"base": [], "head": []}
            ratios: list[float] = []
            for p in range(args.passes):
                for i in range(n):
                    first, second = (base, head) if (i + p) % 2 else (head, base)
                    a, b = first.time(name, i), second.time(name, i)
                    if i < args.warmup:
                        continue
                    t_base, t_head = (a, b) if first is base else (b, a)
                    times["base"].append(t_base)
                    times["head"].append(t_head)
                    ratios.append(t_head / t_base)
            mb, mh = statistics.median(times["base"]), statistics.median(times["head"])
            print(
                f"{name:28} p50 base {mb:.2f} ms, head {mh:.2f} ms: ratio {mh / mb:.3f}; "
                f"median per-query ratio {statistics.median(ratios):.3f} "
                f"({len(ratios)} pairs)"
            )
    finally:
        base.close()
        head.close()
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    main()
