"""Search figures again, on a PostgreSQL database `bench/search.py --keep` left.

    .venv/bin/python bench/search_kept.py 'postgresql://postgres@/memtest_…?host=/tmp/…'

Filling a million memories takes minutes; measuring a change to the search
does not need a new fill. Opening the database applies any newer migration
(timed: what an upgrade costs at that size). The queries are built as
bench/search.py builds them, from the database's own rows with the same seed,
and the same three latency figures are printed; ``--clients 8`` adds searches/s
and writes/s of 8 processes, ``--scrub`` what an owner's forget of one memory
costs, its scrub included (it forgets the newest memory).
"""

from __future__ import annotations

import argparse
import time

import psycopg
from search import Corpus, latency, paraphrased, print_latency, questions
from search_pg import engine_clients

from memory.storage import Scope
from memory.storage.postgres import PostgresBackend, migrations


def queries_from(url: str, corpus: Corpus) -> list[tuple[str, str | None]]:
    """bench/search.py's ``queries``, read from PostgreSQL."""
    with psycopg.connect(url) as conn:
        top = conn.execute("SELECT max(id) FROM memories").fetchone()[0]  # type: ignore[index]
        return questions(corpus, top, lambda memory_id: conn.execute(
            "SELECT content, speaker, conversation_id, created_at FROM memories WHERE id = %s",
            [memory_id]).fetchone())  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=1, help="measure each set this often")
    parser.add_argument(
        "--clients", type=int, default=0, help="then N clients: searches/s, writes/s"
    )
    parser.add_argument(
        "--scrub", action="store_true", help="then forget the newest memory and time its scrub"
    )
    opts = parser.parse_args()
    with psycopg.connect(opts.url) as conn:
        before = migrations.version(conn)
    started = time.perf_counter()
    PostgresBackend.open(opts.url).close()
    if before < migrations.LATEST:
        print(
            f"migrate     schema {before} -> {migrations.LATEST} in "
            f"{time.perf_counter() - started:.1f} s"
        )
    corpus = Corpus(opts.seed)
    qs = queries_from(opts.url, corpus)
    sets = [
        ("own words, whole store", qs, False),
        ("own words, one conversation", qs, True),
        ("paraphrased, whole store", paraphrased(corpus), False),
    ]
    for _ in range(opts.rounds):
        for label, texts, scoped in sets:
            print_latency(label, latency(opts.url, texts, scoped=scoped), "postgres")
    if opts.clients:
        rate, wrate, errors = engine_clients(
            opts.url, opts.clients, [text for text, _ in qs], 10.0, 200
        )
        print(
            f"{opts.clients} clients (postgres): {rate:,.1f} hybrid searches/s over 10 s; "
            f"{wrate:,.1f} writes/s ({opts.clients} x 200 `add_memory`); errors {errors}"
        )
    if opts.scrub:
        scrub(opts.url)


def scrub(url: str) -> None:
    """What an owner's forget of one memory costs at this size: the DELETE
    and the scrub it runs at once (the tables holding text rewritten)."""
    db = PostgresBackend.open(url)
    try:
        (newest,) = db.conn.execute("SELECT max(id) FROM memories").fetchone()  # type: ignore[misc]
        row = db.conn.execute("SELECT profile FROM memories WHERE id = %s", [newest]).fetchone()
        scope = Scope(str(row[0]))  # type: ignore[index]
        started = time.perf_counter()
        result = db.forget(scope, [int(newest)])
        took = time.perf_counter() - started
        print(
            f"forget      one memory, its scrub included: {took:.1f} s "
            f"({'pending' if result.scrub_pending else 'done'}; other clients wait while a "
            "table is rewritten)"
        )
    finally:
        db.close()


if __name__ == "__main__":
    main()
