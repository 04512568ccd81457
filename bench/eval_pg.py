"""Search quality on PostgreSQL beside SQLite: LoCoMo recall through the same
ranking code above the seam (issue 14: within 0.01 for R@10 and ≤2000).

    .venv/bin/python bench/eval_pg.py                          # /work/shared/data/locomo
    .venv/bin/python bench/eval_pg.py DIR --limit 200          # quicker
    MEM_TEST_POSTGRES_URL=postgresql://... bench/eval_pg.py    # another server

Imports ``DIR/messages.jsonl`` into a SQLite file and into a fresh database of
a PostgreSQL server (pgserver's PostgreSQL 16 + pgvector, or the server of
``MEM_TEST_POSTGRES_URL``), opened by URL like any ``--db``, and runs
``mem eval --live`` on each (:meth:`memory.Memory.eval`): recall@k, MRR,
recall within token budgets and search latency, side by side. The same
result from the CLI: ``mem import DIR/messages.jsonl --db URL`` then
``mem eval DIR --live --db URL``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import pg_server  # noqa: E402

from memory import Memory  # noqa: E402

MIN_DIFF = 0.01


def server_database() -> str:
    """A fresh database on the server, as a postgresql:// URL."""
    return pg_server.as_url(pg_server.fresh_database())


def run(target: str, folder: Path, limit: int | None) -> tuple[Any, float]:
    start = time.perf_counter()
    with Memory.open(target) as mem:
        mem.import_(str(folder / "messages.jsonl"))
        imported = time.perf_counter() - start
        report = mem.eval(folder, limit=limit)
    return report, imported


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default="/work/shared/data/locomo")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    folder = Path(args.folder)
    if pg_server.server_url() is None:
        print("no PostgreSQL: pip install pgserver, or set MEM_TEST_POSTGRES_URL")
        return 1
    rows: dict[str, tuple[Any, float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="mem-evalpg-") as tmp:
            rows["sqlite"] = run(str(Path(tmp) / "eval.db"), folder, args.limit)
        rows["postgres"] = run(server_database(), folder, args.limit)
    finally:
        pg_server.stop()
    sq, pg = rows["sqlite"][0], rows["postgres"][0]
    budgets = [b for b in sq.budgets if b == 2000] or sq.budgets[:1]
    heads = " ".join(f"{'≤' + str(b):>6}" for b in budgets)
    print(f"{'backend':<10} {'n':>5} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR':>6} "
          f"{heads} {'p50 ms':>7} {'import s':>8}")  # fmt: skip
    for name, (r, imported) in rows.items():
        o = r.overall
        print(f"{name:<10} {o.questions:>5} {o.recall[1]:>6.3f} {o.recall[5]:>6.3f} "
              f"{o.recall[10]:>6.3f} {o.mrr:>6.3f} "
              + " ".join(f"{o.budget_recall[b]:>6.3f}" for b in budgets)
              + f" {r.latency_p50_ms:>7.1f} {imported:>8.1f}")  # fmt: skip
    d10 = abs(sq.overall.recall[10] - pg.overall.recall[10])
    db = max(abs(sq.overall.budget_recall[b] - pg.overall.budget_recall[b]) for b in budgets)
    ok = d10 <= MIN_DIFF and db <= MIN_DIFF
    print(f"|ΔR@10| {d10:.3f}  |Δ≤budget| {db:.3f}  {'within' if ok else 'NOT within'} {MIN_DIFF}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
