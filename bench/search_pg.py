"""Benchmark the PostgreSQL backend beside SQLite: search legs at 100k rows,
and 8 concurrent clients.

    .venv/bin/python bench/search_pg.py                 # 100,000 rows, 8 clients
    .venv/bin/python bench/search_pg.py --rows 20000    # quicker
    MEM_TEST_POSTGRES_URL=postgresql://... bench/search_pg.py   # another server

Fills a fresh PostgreSQL database (pgserver's PostgreSQL 16 + pgvector, or the
server of ``MEM_TEST_POSTGRES_URL``) and a SQLite file with the same seeded
synthetic memories (Zipf words of a made-up vocabulary, toy hashed vectors of
``--dim`` numbers) in four profiles, then prints through the storage seam:

* the keyword leg (``keyword_scores``, one word, BM25 with the scope's own
  statistics) and the vector leg (``nearest``, k 20, the backend's choice:
  HNSW on PostgreSQL, bit-quantised KNN on SQLite, both re-scored exactly),
  p50 and p95 over ``--queries`` queries after warm-ups, for both backends;
  and the HNSW leg's recall@20 against an exact scan;
* 8 client processes searching (keyword + vector leg per search) for
  ``--seconds``: searches/s; 8 processes writing ``--writes`` memories each
  (a transaction per memory): writes/s, rows lost, errors.

PostgreSQL is filled with COPY (the vector index built after), SQLite through
the seam in one transaction: the fill times are printed but not comparable.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import pg_server  # noqa: E402
from pg_load import toy, write_and_search  # noqa: E402

from memory.storage import MemoryFilter, NewMemory, Scope, StorageBackend  # noqa: E402
from memory.storage.postgres import PostgresBackend  # noqa: E402
from memory.storage.sqlite import SQLiteBackend  # noqa: E402

PROFILES = ("alice", "bob", "carol", "dave")
SYLLABLES = "ka ro mi te su na lo vi pe da shi ko ra ne tu mo ba ge li fa zo ri".split()
ACTIVE = MemoryFilter()


def vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    return ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(size)]


def corpus(rows: int, seed: int) -> tuple[list[tuple[str, str]], list[str]]:
    rng = random.Random(seed)
    words = vocabulary(rng)
    weights = [1 / (i + 1) for i in range(len(words))]
    out = []
    for n in range(rows):
        text = " ".join(rng.choices(words, weights, k=rng.randint(6, 20)))
        out.append((PROFILES[n % 7 % 4], text))  # alice holds 2/7
    return out, words


def fill_postgres(url: str, rows: list[tuple[str, str]], dim: int) -> float:
    start = time.perf_counter()
    db = PostgresBackend.open(url, embedder="toy", dim=dim)
    conn = db.conn
    conn.execute("DROP INDEX memory_vectors_hnsw")
    with conn.transaction():
        with conn.cursor().copy(
            "COPY memories (profile, kind, content, source, created_at, updated_at, valid_from, "
            "tokens) FROM STDIN"
        ) as copy:
            for n, (profile, text) in enumerate(rows):
                stamp = f"2024-01-01T00:00:{n % 60:02d}+00:00"
                copy.write_row(
                    (profile, "fact", text, "user", stamp, stamp, stamp, len(text.split()))
                )
        ids = conn.execute("SELECT id, profile, content FROM memories ORDER BY id").fetchall()
        with conn.cursor().copy("COPY memory_vectors (id, profile, embedding) FROM STDIN") as copy:
            for memory_id, profile, text in ids:
                vec = "[" + ",".join(f"{x:g}" for x in toy(text, dim)) + "]"
                copy.write_row((memory_id, profile, vec))
    conn.execute("SET maintenance_work_mem = '256MB'")
    conn.execute(
        "CREATE INDEX memory_vectors_hnsw ON memory_vectors "
        "USING hnsw (embedding vector_cosine_ops)"
    )
    conn.execute("VACUUM ANALYZE memories")
    conn.execute("VACUUM ANALYZE memory_vectors")
    conn.execute("VACUUM ANALYZE keyword_stats")  # the trigger left 100k dead versions
    db.close()
    return time.perf_counter() - start


# Indexes dropped for the bulk copy and rebuilt after it (their definitions are
# read from the server, so they stay the migrations' own).
_BULK_INDEXES = ("memory_vectors_hnsw", "memories_tsv", "memories_metadata")
_MEMORY_COLUMNS = (
    "id, profile, kind, content, source, source_message_id, conversation_id, external_id, "
    "speaker, importance, confidence, created_at, updated_at, last_used_at, use_count, "
    "valid_from, valid_until, superseded_by, expires_at, metadata"
)


def copy_from_sqlite(source: Path, url: str, batch: int = 20_000) -> float:
    """Fill the empty PostgreSQL database ``url`` with every row of the SQLite
    file ``source`` (same ids, same vectors), by COPY: the rows ``mem copy``
    would write, without the per-row import. Returns the seconds it took."""
    import sqlite3

    import numpy as np
    from pgvector import Vector

    from memory.storage.postgres.base import word_count

    start = time.perf_counter()
    lite = sqlite3.connect(source)
    meta = dict(lite.execute("SELECT key, value FROM meta").fetchall())
    db = PostgresBackend.open(url, embedder=meta["embedder"], dim=int(meta["embedder_dim"]))
    conn = db.conn
    indexes = [
        str(r[0])
        for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = ANY(%s)", [list(_BULK_INDEXES)]
        ).fetchall()
    ]
    for name in _BULK_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {name}".encode())
    conn.execute("ALTER TABLE memories DISABLE TRIGGER memories_keyword_stats")
    conn.execute("ALTER TABLE memories DISABLE TRIGGER memories_term_stats")

    def stream(table: str, columns: str, query: str, shape: Callable[[tuple], tuple]) -> None:
        with (
            conn.transaction(),
            conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN".encode()) as copy,
        ):
            for row in lite.execute(query):
                copy.write_row(shape(row))

    stream("conversations", "id, profile, title, created_at, updated_at, summary",
           "SELECT id, profile, title, created_at, updated_at, summary FROM conversations "
           "ORDER BY rowid", lambda r: r)  # fmt: skip
    msg = "id, conversation_id, profile, role, speaker, content, created_at, external_id, "
    msg += "import_key"
    stream("messages", msg + ", metadata", f"SELECT {msg}, metadata FROM messages ORDER BY id",
           lambda r: r)  # fmt: skip
    stream("memories", _MEMORY_COLUMNS + ", tokens",
           f"SELECT {_MEMORY_COLUMNS} FROM memories ORDER BY id",
           lambda r: (*r, word_count(r[3], r[8])))  # fmt: skip
    stream("memory_events", "memory_id, profile, event, at, actor, before, after, detail",
           "SELECT e.memory_id, m.profile, e.event, e.at, e.actor, e.before, e.after, e.detail "
           "FROM memory_events e JOIN memories m ON m.id = e.memory_id ORDER BY e.id",
           lambda r: r)  # fmt: skip
    rows = lite.execute(
        "SELECT v.id, m.profile, v.vector FROM memory_vectors v JOIN memories m ON m.id = v.id "
        "ORDER BY v.id"
    )
    while chunk := rows.fetchmany(batch):
        with (
            conn.transaction(),
            conn.cursor().copy(
                "COPY memory_vectors (id, profile, embedding) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["int8", "text", "vector"])
            for memory_id, profile, blob in chunk:
                copy.write_row((memory_id, profile, Vector(np.frombuffer(blob, dtype="<f4"))))
    with conn.transaction():
        conn.execute(
            "INSERT INTO keyword_stats (profile, rows, tokens) SELECT profile, count(*), "
            "sum(tokens) FROM memories GROUP BY profile"
        )
        conn.execute("ALTER TABLE memories ENABLE TRIGGER memories_keyword_stats")
        conn.execute(  # what the trigger would have counted, in one pass (migration 7)
            "INSERT INTO term_stats (profile, lexeme, weight, docs) SELECT m.profile, "
            "t.lexeme, t.weight, count(*) FROM memories m CROSS JOIN LATERAL "
            "mem_term_weights(m.tsv) t GROUP BY 1, 2, 3"
        )
        conn.execute("ALTER TABLE memories ENABLE TRIGGER memories_term_stats")
        for table in ("memories", "messages"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)".encode()
            )
    conn.execute("SET maintenance_work_mem = '2GB'")  # the HNSW graph of 1M vectors
    for definition in indexes:
        conn.execute(definition.encode())
    for table in ("conversations", "messages", "memories", "memory_vectors", "memory_events",
                  "keyword_stats", "term_stats"):  # fmt: skip
        conn.execute(f"VACUUM ANALYZE {table}".encode())
    db.close()
    lite.close()
    return time.perf_counter() - start


def engine_client(
    target: str, texts: list[str], seconds: float, writes: int, tag: str
) -> dict[str, float]:
    """One client process of ``bench/search.py``: hybrid searches through the
    engine (``retrieval.find``, as ``mem search``) for ``seconds``, or, with
    ``writes``, that many memories added through the engine (embedded, gated,
    audited: a transaction each). Errors are counted, not raised."""
    from memory.retrieval import search as retrieval
    from memory.store import MemoryStore

    done = {"searches": 0, "writes": 0, "errors": 0, "seconds": 0.0}
    with MemoryStore.open(target) as store:
        start = time.perf_counter()
        if writes:
            for n in range(writes):
                try:
                    store.add_memory(f"{tag} note {n}: {texts[n % len(texts)]}")
                    done["writes"] += 1
                except Exception:  # counted: the bench prints them
                    done["errors"] += 1
        else:
            while time.perf_counter() - start < seconds:
                try:
                    retrieval.find(store, texts[int(done["searches"]) % len(texts)], limit=10)
                    done["searches"] += 1
                except Exception:
                    done["errors"] += 1
        done["seconds"] = time.perf_counter() - start
    return done


def engine_clients(
    target: str, n: int, texts: list[str], seconds: float, writes: int
) -> tuple[float, float, int]:
    """``n`` processes searching for ``seconds`` (searches/s), then ``n``
    writing ``writes`` memories each (writes/s over the slowest); the errors."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(n) as pool:
        parts = [texts[i::n] for i in range(n)]
        searched = pool.starmap(engine_client, [(target, parts[i], seconds, 0, "")
                                                for i in range(n)])  # fmt: skip
        written = pool.starmap(engine_client, [(target, parts[i], 0.0, writes, f"client{i}")
                                               for i in range(n)])  # fmt: skip
    rate = sum(r["searches"] for r in searched) / max(r["seconds"] for r in searched)
    wrate = sum(r["writes"] for r in written) / max(r["seconds"] for r in written)
    return rate, wrate, int(sum(r["errors"] for r in searched + written))


def fill_sqlite(path: Path, rows: list[tuple[str, str]], dim: int) -> float:
    start = time.perf_counter()
    db = SQLiteBackend.open(path, embedder="toy", dim=dim)
    with db.transaction(Scope("alice")):
        for profile, text in rows:
            db.add_memory(Scope(profile), NewMemory(text), toy(text, dim))
    db.close()
    return time.perf_counter() - start


def timed(call: Callable[[], object], queries: int) -> tuple[float, float]:
    for _ in range(5):
        call()
    times = []
    for _ in range(queries):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def legs(db: StorageBackend, words: list[str], dim: int, queries: int, seed: int) -> None:
    rng = random.Random(seed)
    scope = Scope.of("alice")
    terms = iter(rng.choices(words[20:500], k=queries + 5))
    vectors = iter(toy(" ".join(rng.choices(words[:2000], k=8)), dim) for _ in range(queries + 5))
    kw = timed(lambda: db.keyword_scores(scope, next(terms), ACTIVE, limit=50), queries)
    vec = timed(lambda: db.nearest(scope, next(vectors), ACTIVE, k=20), queries)
    print(f"  {db.name:8} keyword leg p50 {kw[0]:7.2f} ms  p95 {kw[1]:7.2f} ms   "
          f"vector leg p50 {vec[0]:7.2f} ms  p95 {vec[1]:7.2f} ms")  # fmt: skip


def recall(db: StorageBackend, words: list[str], dim: int, seed: int, n: int = 30) -> float:
    """Share of the approximate top k whose exact similarity reaches the
    exact k-th best (toy vectors tie often: a tie counts as found)."""
    rng = random.Random(seed + 1)
    scope, good = Scope.of("alice"), 0
    for _ in range(n):
        q = toy(" ".join(rng.choices(words[:2000], k=8)), dim)
        exact = db.nearest(scope, q, ACTIVE, k=20, exact=True)
        approx = db.nearest(scope, q, ACTIVE, k=20, exact=False)
        bar = min(exact.values())
        good += sum(1 for s in approx.values() if s >= bar - 1e-9)
    return good / (20 * n)


def clients(url: str, n: int, writes: int, seconds: float, words: list[str]) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(n) as pool:
        terms = tuple(words[20:500])
        args = [(url, PROFILES[i % 4], 0, False, seconds, terms) for i in range(n)]
        searched = pool.starmap(write_and_search, args)
        db = PostgresBackend.open(url)
        before = sum(db.keyword_stats(Scope(p)).rows for p in PROFILES)
        start = time.perf_counter()
        written = pool.starmap(write_and_search, [(url, PROFILES[i % 4], writes, True)
                                                  for i in range(n)])  # fmt: skip
        wall = time.perf_counter() - start
        after = sum(len(db.list_memories(Scope(p), MemoryFilter(include_inactive=True)))
                    for p in PROFILES)  # fmt: skip
        db.close()
    rate = sum(r["searches"] for r in searched) / max(r["seconds"] for r in searched)
    errors = sum(len(r["errors"]) for r in searched + written)
    lost = before + n * writes - after
    print(f"  {n} clients searching: {rate:8.1f} searches/s (keyword + vector leg each)")
    print(f"  {n} clients writing:   {n * writes / wall:8.1f} writes/s ({n} x {writes}, "
          f"{wall:.1f} s incl. process start), lost {lost}, errors {errors}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if pg_server.server_url() is None:
        sys.exit("No PostgreSQL: pip install pgserver, or set MEM_TEST_POSTGRES_URL.")
    try:
        rows, words = corpus(args.rows, args.seed)
        url = pg_server.fresh_database()
        print(f"{args.rows:,} memories in {len(PROFILES)} profiles, vectors of {args.dim}, "
              f"searches as alice ({sum(p == 'alice' for p, _ in rows):,} rows)")  # fmt: skip
        print(f"  fill: postgres {fill_postgres(url, rows, args.dim):.1f} s (COPY + HNSW build)",
              end="", flush=True)  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.sqlite"
            print(f", sqlite {fill_sqlite(path, rows, args.dim):.1f} s (the seam, one transaction)")
            for db in (PostgresBackend.open(url), SQLiteBackend.open(path)):
                legs(db, words, args.dim, args.queries, args.seed)
                if isinstance(db, PostgresBackend):
                    hit = recall(db, words, args.dim, args.seed)
                    print(f"  postgres HNSW recall@20 vs exact: {hit:.3f}")
                db.close()
        clients(url, args.clients, args.writes, args.seconds, words)
    finally:
        pg_server.stop()


if __name__ == "__main__":
    main()
