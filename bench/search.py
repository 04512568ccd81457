"""Benchmark search: insert rate, in-process hybrid search latency, cold `mem search`.

    .venv/bin/python bench/search.py                  # 10,000 and 100,000 memories
    .venv/bin/python bench/search.py --sizes 20000    # other sizes
    .venv/bin/python bench/search.py --million        # adds 1,000,000 (several minutes)
    .venv/bin/python bench/search.py --sizes --million  # only 1,000,000
    .venv/bin/python bench/search.py --embedder hash-256  # another embedder
    .venv/bin/python bench/search.py --sizes 100000 --db postgresql://postgres@/postgres?host=/tmp/pg
    .venv/bin/python bench/search.py --sizes 100000 --postgres   # pgserver starts one

For each size, fills a fresh temporary database with synthetic memories (the
same ones on every run: a seeded generator, Zipf-distributed words from a
made-up vocabulary, conversations of two speakers in day-long sessions, plus
facts, instructions and documents; some facts superseded), then prints:

* the insert rate, memories/s, with the time spent embedding shown apart, and
  beside it `mem import` timed end to end (a subprocess) on the same rows;
* in-process hybrid search latency, p50 and p95 over 200 queries after
  warm-ups, across the whole store and within one conversation, for two query
  sets: "own words" (a few words of a stored memory: the keyword leg finds
  them, so the vector leg rarely runs) and "paraphrased" (questions about
  English facts mixed into the store, worded with synonyms from templates, so
  they share no content word with the fact they ask about). For each set: how
  many queries ran the vector leg, and the latency of those and of the others;
* "cold process, warm cache": the wall time of a new `mem search QUERY --db
  PATH` process (median of 7, after one run that wrote the bytecode, with the
  database in the page cache), next to `python -c pass` measured in the same run.

With ``--db URL`` (a superuser's URL of a PostgreSQL server with pgvector; a
fresh database is made on it for each size and dropped after) or
``--postgres``, each size is also copied into PostgreSQL by COPY (the same
rows, ids and vectors; indexes built after) and every search figure and the
cold `mem search` are printed for both backends, SQLite's first; then
``--clients`` processes (8) run hybrid searches for ``--seconds`` on each
backend (searches/s), and write ``--writes`` memories each through the engine
(``add_memory``: embedded, gated, audited, a transaction each; writes/s).

Rows are written with the same SQL as ``MemoryStore.log_message`` and
``add_memory`` (messages, memories, FTS, both vector tables, audit events),
batched in large transactions instead of one per memory.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import pg_server  # noqa: E402
import search_pg  # noqa: E402

from memory.eval.evaluation import percentile  # noqa: E402
from memory.models.embed import Embedder, get_embedder, pack  # noqa: E402
from memory.retrieval import legs  # noqa: E402
from memory.retrieval import search as retrieval  # noqa: E402
from memory.storage.sqlite import keyword_stats  # noqa: E402
from memory.storage.sqlite.db import transaction  # noqa: E402
from memory.store import MemoryStore  # noqa: E402

SYLLABLES = "ka ro mi te su na lo vi pe da shi ko ra ne tu mo ba ge li fa zo ri ya hu".split()
MONTHS = (
    "January February March April May June July August September October November December"
).split()
BATCH = 5_000
QUERIES = 200
WARMUP = 20
COLD_RUNS = 7
T0 = 1_640_995_200  # 2022-01-01T00:00:00Z


@dataclass
class Corpus:
    """A seeded generator of memories and queries."""

    seed: int
    vocab: list[str] = field(default_factory=list)
    cumulative: list[float] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        words: set[str] = set()
        while len(words) < 20_000:
            words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
        self.vocab = sorted(words)
        rng.shuffle(self.vocab)
        # Zipf-Mandelbrot: the k-th most common word has weight 1/(k + 50). The
        # offset stands for the stop-words that head real text and that search
        # drops: the most common word here is in about 5 % of memories.
        self.cumulative = list(
            itertools.accumulate(1.0 / (k + 50) for k in range(1, len(self.vocab) + 1))
        )
        names: set[str] = set()
        while len(names) < 300:
            names.add("".join(rng.choice(SYLLABLES) for _ in range(3)).title())
        self.names = sorted(names)

    def sentence(self, rng: random.Random, low: int = 6, high: int = 24) -> str:
        chosen = rng.choices(self.vocab, cum_weights=self.cumulative, k=rng.randint(low, high))
        return " ".join(chosen).capitalize() + "."


# English facts about the user, and questions about them that keep the meaning
# and change the words: {a|b} picks one synonym. Written once from ordinary
# phrasing, not tuned to any embedder or to the results.
PARAPHRASED: list[tuple[str, list[str], list[str]]] = [
    (
        "The user works as a {v}.",
        ["nurse", "teacher", "plumber", "lawyer", "baker", "pilot"],
        ["What is my {occupation|profession|line of work}?", "what do I do for a living"],
    ),
    (
        "The user's dog is called {v}.",
        ["Rex", "Bruno", "Luna", "Max"],
        ["What is the name of my {puppy|pet|hound}?", "how do I call my {puppy|pet}"],
    ),
    (
        "The user lives in {v}.",
        ["Lyon", "Porto", "Oslo", "Madrid", "Kyoto"],
        ["Where is my {home|house|flat}?", "which {town|city} do I reside in"],
    ),
    (
        "The user is allergic to {v}.",
        ["peanuts", "shellfish", "gluten", "milk"],
        ["What {food|ingredient} must I avoid?", "what can I not eat"],
    ),
    (
        "The user enjoys {v} at the weekend.",
        ["hiking", "painting", "swimming", "chess"],
        ["What {hobby|pastime} do I like?", "how do I spend {Saturdays|Sundays}"],
    ),
    (
        "The user drives a {v}.",
        ["Volvo", "bicycle", "motorbike", "van"],
        ["What {vehicle|car} do I own?", "how do I {commute|travel} to {work|the office}"],
    ),
    (
        "The user's sister is named {v}.",
        ["Clara", "Ines", "Mei", "Olga"],
        ["Who is my {sibling|sister}?", "what is my {sibling's|sister's} name"],
    ),
    (
        "The user prefers {v} in the morning.",
        ["green tea", "black coffee", "orange juice"],
        ["What do I {drink|have} {at breakfast|after waking up}?", "my {morning|breakfast} drink"],
    ),
]


def spin(template: str, rng: random.Random) -> str:
    """Expand ``{a|b}`` choices in a question template."""
    out, rest = [], template
    while "{" in rest:
        head, _, tail = rest.partition("{")
        options, _, rest = tail.partition("}")
        out += [head, rng.choice(options.split("|"))]
    return "".join(out) + rest


@dataclass
class Row:
    kind: str
    content: str
    created_at: str
    conversation: str | None = None
    speaker: str | None = None
    role: str | None = None
    importance: float = 0.5
    superseded: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(seconds))


def generate(corpus: Corpus, total: int) -> Iterator[Row]:
    """``total`` memories: 80 % messages in conversations (two speakers,
    sessions of 10-30 turns on one day), the rest facts, instructions and
    document chunks; about 2 % of facts superseded."""
    rng = random.Random(corpus.seed * 1_000_003 + total)
    made = 0
    conv = 0
    for template, values, _ in PARAPHRASED:  # the facts the paraphrased queries ask about
        for value in values:
            made += 1
            yield Row("fact", template.format(v=value), _iso(T0 + made * 86_400), importance=0.7)
    while made < total:
        if rng.random() < 0.8:
            conv += 1
            a, b = rng.sample(corpus.names, 2)
            start = T0 + rng.randint(0, 700) * 86_400
            for _session in range(rng.randint(3, 12)):
                stamp = start + rng.randint(8, 20) * 3600
                for turn in range(rng.randint(10, 30)):
                    if made >= total:
                        return
                    speaker, other = (a, b) if turn % 2 == 0 else (b, a)
                    text = corpus.sentence(rng)
                    if rng.random() < 0.2:
                        text = f"{other}, {text[0].lower()}{text[1:]}"
                    yield Row(
                        "message",
                        text,
                        _iso(stamp + turn * 40),
                        f"conv-{conv}",
                        speaker,
                        "user" if turn % 2 == 0 else "assistant",
                    )
                    made += 1
                start += rng.randint(1, 20) * 86_400
        else:
            for _ in range(rng.randint(5, 50)):
                if made >= total:
                    return
                kind = rng.choices(("fact", "instruction", "document"), (6, 1, 3))[0]
                text = " ".join(corpus.sentence(rng) for _ in range(3 if kind == "document" else 1))
                meta = {"path": f"docs/{rng.choice(corpus.vocab)}.md"} if kind == "document" else {}
                yield Row(
                    kind,
                    text,
                    _iso(T0 + rng.randint(0, 730 * 86_400)),
                    importance=round(rng.uniform(0.2, 0.9), 2),
                    superseded=kind == "fact" and rng.random() < 0.02,
                    metadata=meta,
                )
                made += 1


_EMBEDDER: Embedder | None = None
_EMBEDDER_NAME: str | None = None  # set before the pool forks; None: the default


def _embed(texts: list[str]) -> list[bytes]:
    """In a worker process: one embedder per process, so its word cache lasts."""
    global _EMBEDDER
    if _EMBEDDER is None:
        _EMBEDDER = get_embedder(_EMBEDDER_NAME)
    return [pack(v) for v in _EMBEDDER.embed(texts)]


def fill(db: Path, corpus: Corpus, total: int) -> tuple[float, float]:
    """Insert ``total`` memories; returns (seconds in all, seconds embedding)."""
    # The pool forks before the database is opened: children embed, never touch it.
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        store = MemoryStore.open(db, embedder=_EMBEDDER_NAME)
        conn = store.conn
        started = time.perf_counter()
        embed_seconds = 0.0
        conversations: set[str] = set()
        rows = generate(corpus, total)
        next_id = 1
        while True:
            batch = list(itertools.islice(rows, BATCH))
            if not batch:
                break
            t = time.perf_counter()
            chunks = [[r.content for r in batch[i : i + 500]] for i in range(0, len(batch), 500)]
            blobs = [b for part in pool.map(_embed, chunks) for b in part]
            embed_seconds += time.perf_counter() - t
            with transaction(conn):
                next_id = _write(store, batch, blobs, next_id, conversations)
        with transaction(conn):  # the per-profile keyword statistics the store keeps
            keyword_stats.rebuild(conn)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return time.perf_counter() - started, embed_seconds


def _write(
    store: MemoryStore, batch: list[Row], blobs: list[bytes], next_id: int, convs: set[str]
) -> int:
    """The rows ``log_message`` / ``add_memory`` would write, in bulk."""
    conn = store.conn
    now = _iso(time.time())
    for r in batch:
        if r.conversation and r.conversation not in convs:
            convs.add(r.conversation)
            conn.execute(
                "INSERT INTO conversations(id, profile, title, created_at, updated_at) "
                "VALUES (?, ?, NULL, ?, ?)",
                [r.conversation, store.profile, r.created_at, r.created_at],
            )
    message_ids: dict[int, int] = {}
    for i, r in enumerate(batch):
        if r.kind == "message":
            cur = conn.execute(
                "INSERT INTO messages(conversation_id, profile, role, speaker, content, "
                "created_at, external_id, import_key, metadata) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    r.conversation,
                    store.profile,
                    r.role,
                    r.speaker,
                    r.content,
                    r.created_at,
                    None,
                    f"{r.conversation}\x1f@{next_id + i}",
                    "{}",
                ],
            )
            message_ids[i] = int(cur.lastrowid)
    ids = list(range(next_id, next_id + len(batch)))
    conn.executemany(
        "INSERT INTO memories(id, profile, kind, content, source, source_message_id, "
        "conversation_id, external_id, speaker, importance, confidence, created_at, "
        "updated_at, valid_from, metadata, superseded_by, valid_until) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (
                mid,
                store.profile,
                r.kind,
                r.content,
                f"message:{r.role}" if r.kind == "message" else "user",
                message_ids.get(i),
                r.conversation,
                None,
                r.speaker,
                r.importance,
                1.0,
                r.created_at,
                now,
                r.created_at,
                json.dumps(r.metadata),
                None,
                now if r.superseded else None,
            )
            for i, (mid, r) in enumerate(zip(ids, batch, strict=True))
        ],
    )
    conn.executemany(
        "INSERT INTO memories_fts(rowid, content, speaker) VALUES (?, ?, ?)",
        [(mid, r.content, r.speaker or "") for mid, r in zip(ids, batch, strict=True)],
    )
    conn.executemany(
        "INSERT INTO memory_vectors(id, vector) VALUES (?, ?)", list(zip(ids, blobs, strict=True))
    )
    conn.executemany(
        "INSERT INTO memories_vec(id, embedding) VALUES (?, vec_quantize_binary(vec_f32(?)))",
        list(zip(ids, blobs, strict=True)),
    )
    conn.executemany(
        "INSERT INTO memory_events(memory_id, event, at, actor, before, after, detail) "
        "VALUES (?, 'add', ?, 'user', NULL, ?, ?)",
        [
            (
                mid,
                now,
                json.dumps({"content": r.content, "kind": r.kind}),
                json.dumps({"source": "user"}),
            )
            for mid, r in zip(ids, batch, strict=True)
            if r.kind != "message"
        ],
    )
    return next_id + len(batch)


def queries(corpus: Corpus, db: Path) -> list[tuple[str, str | None]]:
    """Questions built from stored memories: a few of their words, sometimes a
    speaker's name or a month; each with the memory's conversation."""
    with MemoryStore.open(db) as store:
        top = store.conn.execute("SELECT max(id) FROM memories").fetchone()[0]
        return questions(corpus, top, lambda memory_id: store.conn.execute(
            "SELECT content, speaker, conversation_id, created_at FROM memories WHERE id = ?",
            [memory_id]).fetchone())  # fmt: skip


def questions(
    corpus: Corpus, top: int, row: Callable[[int], tuple[Any, ...] | None]
) -> list[tuple[str, str | None]]:
    """:func:`queries` from any store: ``row(id)`` gives (content, speaker,
    conversation, created_at) of a memory, or None."""
    rng = random.Random(corpus.seed + 99)
    out: list[tuple[str, str | None]] = []
    while len(out) < QUERIES + WARMUP:
        found = row(rng.randint(1, top))
        if found is None:
            continue
        content, speaker, conv, created = found
        words = [w.strip(".,").lower() for w in content.split()]
        picked = rng.sample(words, min(len(words), rng.randint(2, 4)))
        text = " ".join(picked)
        roll = rng.random()
        if speaker and roll < 0.4:
            text = f"What did {speaker} say about {text}?"
        elif roll < 0.55:
            text = f"What about {text} in {MONTHS[int(created[5:7]) - 1]} {created[:4]}?"
        out.append((text, conv))
    return out


def paraphrased(corpus: Corpus) -> list[tuple[str, str | None]]:
    """Questions about the English facts, in other words than the facts'."""
    rng = random.Random(corpus.seed + 7)
    out: list[tuple[str, str | None]] = []
    while len(out) < QUERIES + WARMUP:
        _, _, questions = rng.choice(PARAPHRASED)
        out.append((spin(rng.choice(questions), rng), None))
    return out


# How many searches ran the vector leg (a KNN or exact scan bringing candidates of
# its own): counted by wrapping the function that runs it (bench only).
_VECTOR_CALLS = [0]
_nearest = legs.nearest


def _counted_nearest(*args: Any, **kwargs: Any) -> Any:
    _VECTOR_CALLS[0] += 1
    return _nearest(*args, **kwargs)


legs.nearest = _counted_nearest


@dataclass
class Latency:
    all: list[float] = field(default_factory=list)
    vector: list[float] = field(default_factory=list)
    keyword_only: list[float] = field(default_factory=list)


def latency(db: Path | str, qs: list[tuple[str, str | None]], scoped: bool) -> Latency:
    """In-process ``store.search`` times (ms) after warm-ups, split by whether
    the vector leg ran."""
    out = Latency()
    with MemoryStore.open(db) as store:
        for i, (text, conv) in enumerate(qs):
            before = _VECTOR_CALLS[0]
            t = time.perf_counter()
            retrieval.find(store, text, limit=10, conversation=conv if scoped else None)
            ms = (time.perf_counter() - t) * 1000
            if i < WARMUP:
                continue
            out.all.append(ms)
            (out.vector if _VECTOR_CALLS[0] > before else out.keyword_only).append(ms)
    return out


def _p(values: list[float]) -> str:
    if not values:
        return "—"
    return f"p50 {statistics.median(values):.1f} ms, p95 {percentile(values, 0.95):.1f} ms"


def print_latency(label: str, lat: Latency, backend: str = "") -> None:
    print(
        f"search{' ' + backend if backend else '':9} {_p(lat.all)} ({label}); vector leg ran "
        f"in {len(lat.vector)} of "
        f"{len(lat.all)}: {_p(lat.vector)}; keyword only: {_p(lat.keyword_only)}"
    )


def import_file(corpus: Corpus, total: int, path: Path) -> None:
    """The same rows as ``fill`` writes, as a `mem import` JSONL file."""
    with open(path, "w", encoding="utf-8") as f:
        for i, r in enumerate(generate(corpus, total)):
            if r.kind == "message":
                line: dict[str, Any] = {
                    "conversation": r.conversation,
                    "role": r.role,
                    "speaker": r.speaker,
                    "content": r.content,
                    "timestamp": r.created_at,
                    "id": f"m{i}",
                }
            else:
                line = {
                    "type": "memory",
                    "kind": r.kind,
                    "content": r.content,
                    "created_at": r.created_at,
                    "importance": r.importance,
                }
                if r.metadata:
                    line["metadata"] = r.metadata
            f.write(json.dumps(line) + "\n")


def time_import(corpus: Corpus, total: int, work: Path) -> tuple[float, str]:
    """Wall seconds of `mem import FILE` in a fresh MEM_HOME, and any error."""
    source = work / "rows.jsonl"
    import_file(corpus, total, source)
    home = work / "import-home"
    env = dict(os.environ, MEM_HOME=str(home), PYTHONPATH=str(ROOT))
    if _EMBEDDER_NAME:
        env["MEM_EMBEDDER"] = _EMBEDDER_NAME
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "import", str(source)],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    seconds = time.perf_counter() - started
    return seconds, "" if out.returncode == 0 else f" (exit {out.returncode}: {out.stderr.strip()})"


def _wall(cmd: list[str], env: dict[str, str]) -> float:
    subprocess.run(cmd, env=env, check=True, capture_output=True)  # writes the .pyc files
    runs = []
    for _ in range(COLD_RUNS):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def cold(db: Path | str, query: str, home: Path) -> tuple[float, float]:
    """Median wall seconds of `mem search` and of `python -c pass`."""
    mem = shutil.which("mem", path=str(Path(sys.executable).parent)) or shutil.which("mem")
    cmd = [mem] if mem else [sys.executable, "-m", "cli.main"]
    # An installed mem has its bytecode cached: let the children write it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["MEM_HOME"] = str(home)
    base = _wall([sys.executable, "-c", "pass"], env)
    return _wall([*cmd, "search", query, "--db", str(db)], env), base


@dataclass
class Server:
    """Where PostgreSQL runs beside SQLite (``--db URL`` or ``--postgres``)."""

    clients: int = 8
    seconds: float = 10.0
    writes: int = 200
    keep: bool = False


def run(size: int, seed: int, skip_import: bool = False, server: Server | None = None) -> None:
    corpus = Corpus(seed)
    home = Path(tempfile.mkdtemp(prefix="mem-bench-search-"))
    try:
        db = home / "bench.db"
        seconds, embedding = fill(db, corpus, size)
        embedder = get_embedder(_EMBEDDER_NAME).name
        print(f"== {size:,} memories ({os.path.getsize(db) / 1e6:.0f} MB, {embedder})")
        print(
            f"insert      {size / seconds:,.0f} memories/s ({seconds:.1f} s, of which "
            f"{embedding:.1f} s embedding; {size / max(seconds - embedding, 1e-9):,.0f}/s "
            f"without it)"
        )
        if not skip_import:
            took, error = time_import(corpus, size, home)
            print(
                f"mem import  {size / took:,.0f} memories/s end to end ({took:.1f} s, a "
                f"subprocess, same rows; bulk SQL above: {size / seconds:,.0f}/s){error}"
            )
        qs = queries(corpus, db)
        url = ""
        if server is not None:
            url = pg_server.as_url(pg_server.fresh_database())
            took = search_pg.copy_from_sqlite(db, url)
            print(f"postgres    filled from the SQLite file by COPY in {took:.1f} s "
                  "(indexes built after; the same rows, ids and vectors)")  # fmt: skip
        targets: list[tuple[str, str | Path]] = [("sqlite", db)] + (
            [("postgres", url)] if url else []
        )
        sets = [
            ("own words, whole store", qs, False),
            ("own words, one conversation", qs, True),
            ("paraphrased, whole store", paraphrased(corpus), False),
        ]
        for label, texts, scoped in sets:
            for name, target in targets:
                print_latency(label, latency(target, texts, scoped=scoped), name if url else "")
        for name, target in targets:
            wall, base = cold(target, qs[WARMUP][0], home)
            print(
                f"cold process, warm cache{' (' + name + ')' if url else ''}: `mem search` "
                f"{wall:.3f} s wall (python -c pass {base:.3f} s; bytecode written and "
                "database in the page cache)"
            )
        if server is not None and server.clients:
            texts = [text for text, _ in qs]
            for name, target in targets:
                rate, wrate, errors = search_pg.engine_clients(
                    str(target), server.clients, texts, server.seconds, server.writes
                )
                print(
                    f"{server.clients} clients ({name}): {rate:,.1f} hybrid searches/s over "
                    f"{server.seconds:.0f} s; {wrate:,.1f} writes/s ({server.clients} x "
                    f"{server.writes} `add_memory`, embedded and audited); errors {errors}"
                )
        if url and server is not None and server.keep:
            print(f"postgres    kept: {pg_server.redact(url)}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--million", action="store_true", help="Also 1,000,000 memories.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--embedder", help="Embedder of the databases (default: mem's default).")
    parser.add_argument("--no-import", action="store_true", help="Skip timing `mem import`.")
    parser.add_argument(
        "--db",
        metavar="URL",
        help="Also PostgreSQL: a superuser postgresql:// URL of a server (a fresh database "
        "is made there for each size and dropped after).",
    )
    parser.add_argument(
        "--postgres", action="store_true", help="Also PostgreSQL: start one with pgserver."
    )
    parser.add_argument("--clients", type=int, default=8, help="Concurrent clients (0: none).")
    parser.add_argument("--seconds", type=float, default=10.0, help="How long the clients search.")
    parser.add_argument("--writes", type=int, default=200, help="Memories each client writes.")
    parser.add_argument("--keep", action="store_true", help="Keep the PostgreSQL database.")
    args = parser.parse_args()
    global _EMBEDDER_NAME
    _EMBEDDER_NAME = args.embedder
    server: Server | None = None
    if args.db or args.postgres:
        if args.db:
            if not args.db.startswith(("postgresql://", "postgres://")):
                sys.exit("--db takes a postgresql:// URL (a superuser's, on the server to use).")
            os.environ["MEM_TEST_POSTGRES_URL"] = args.db
        if pg_server.server_url() is None:
            sys.exit("No PostgreSQL: pip install pgserver, or give --db postgresql://URL.")
        print(f"PostgreSQL: {pg_server.describe()}")
        server = Server(args.clients, args.seconds, args.writes, args.keep)
    try:
        for size in [*args.sizes, *([1_000_000] if args.million else [])]:
            run(size, args.seed, args.no_import, server)
    finally:
        if server is not None and not server.keep:
            pg_server.stop()


if __name__ == "__main__":
    main()
