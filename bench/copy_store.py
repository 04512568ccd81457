"""Benchmark `mem copy`: rows/s from SQLite into PostgreSQL and back.

    .venv/bin/python bench/copy_store.py                   # 20,000 memories, pgserver
    .venv/bin/python bench/copy_store.py --size 5000       # quicker
    .venv/bin/python bench/copy_store.py --db postgresql://USER@HOST/DB   # another server

Fills a SQLite file with the synthetic store of ``bench/search.py`` (messages
in conversations, facts, instructions, document chunks, some superseded), then
times :func:`memory.lifecycle.copy.copy_store` (what ``mem copy`` runs: export
of each profile, then import, the secret gate, embedding and all) into a fresh
PostgreSQL database, and from there into a new SQLite file; prints rows/s for
each, and whether ``mem export`` of the PostgreSQL copy equals that of the
copy back (the copy's identity, ids aside, which the export does not hold;
the first file is written in bulk, not by mem, so its conversations keep their
first message's time as their last update, which an import moves on).

(Not ``bench/copy.py``: run as a script, that name would shadow the standard
library's ``copy`` module for everything it imports.)
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import pg_server  # noqa: E402
from search import Corpus, fill  # noqa: E402

from memory.lifecycle.copy import copy_store  # noqa: E402
from memory.lifecycle.transfer import export  # noqa: E402
from memory.store import MemoryStore  # noqa: E402


def exported(target: str) -> str:
    out = io.StringIO()
    with MemoryStore.open(target) as store:
        export(store, out)
    return out.getvalue()


def timed_copy(source: str, target: str) -> tuple[int, float]:
    started = time.perf_counter()
    report = copy_store(source, target)
    return report.rows, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=20_000, help="Memories in the store.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", metavar="URL", help="A superuser postgresql:// URL of a server.")
    args = parser.parse_args()
    if args.db:
        os.environ["MEM_TEST_POSTGRES_URL"] = args.db
    if pg_server.server_url() is None:
        sys.exit("No PostgreSQL: pip install pgserver, or give --db postgresql://URL.")
    try:
        with tempfile.TemporaryDirectory(prefix="mem-bench-copy-") as tmp:
            os.environ.setdefault("MEM_HOME", str(Path(tmp) / "home"))
            first, back = Path(tmp) / "first.db", Path(tmp) / "back.db"
            fill(first, Corpus(args.seed), args.size)
            url = pg_server.as_url(pg_server.fresh_database())
            print(f"{args.size:,} memories ({os.path.getsize(first) / 1e6:.0f} MB SQLite), "
                  f"PostgreSQL {pg_server.describe()}")  # fmt: skip
            rows, took = timed_copy(str(first), url)
            print(f"mem copy sqlite -> postgres: {rows:,} rows in {took:.1f} s, "
                  f"{rows / took:,.0f} rows/s")  # fmt: skip
            rows, took = timed_copy(url, str(back))
            print(f"mem copy postgres -> sqlite: {rows:,} rows in {took:.1f} s, "
                  f"{rows / took:,.0f} rows/s")  # fmt: skip
            same = exported(url) == exported(str(back))
            answer = "yes" if same else "NO"
            print(f"export of the copy back equals the PostgreSQL copy's: {answer}")
    finally:
        pg_server.stop()


if __name__ == "__main__":
    main()
