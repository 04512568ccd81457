"""Pipeline overhead of one assistant turn: everything but the model.

    python bench/turn.py [--n 100000] [--turns 60] [--db PATH]

Fills a database with N synthetic memories (messages in many conversations
plus facts and instructions) through the real import path, then runs turns
whose model is a stand-in that answers instantly, and prints the median and
p95 of the whole turn and of its steps: prepare (log the message, retrieve,
assemble the prompt), log the reply, and after_reply (extraction with the
offline rules, consolidation). Target: ≤ 30 ms per turn at 100k memories.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory import MemoryStore  # noqa: E402
from memory.assistant import Assistant, Settings  # noqa: E402
from memory.evaluation import percentile  # noqa: E402
from memory.llm import Usage  # noqa: E402

WORDS = (
    "trip hotel dinner garden music guitar painting dog cat school work project deadline "
    "budget family sister brother mother father friend weekend hiking beach mountain city "
    "train flight coffee tea book movie concert recipe pasta salad doctor gym running yoga "
    "birthday party gift camera photo museum history science coding python database memory"
).split()
USER_LINES = [
    "I live in {city} now and I love it",
    "My favourite food is {food}",
    "I work at {company} as an engineer",
    "Can you suggest a {word} for the {word2}?",
    "What did I say about the {word} last week?",
    "I decided to learn {word} this year",
]


class InstantModel:
    """Stands in for the provider so only mem's own work is timed."""

    name = "bench/instant"

    def __init__(self) -> None:
        self.usage = Usage()

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        yield "Sure, "
        yield "here is an answer."

    def complete(self, messages: list[dict[str, str]], **_: object) -> str:
        return '{"facts": []}'

    def context_window(self) -> int:
        return 128_000


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def fill(store: MemoryStore, n: int, rng: random.Random) -> float:
    lines = []
    n_facts = max(n // 50, 10)
    for i in range(n - n_facts):
        lines.append(
            json.dumps(
                {
                    "conversation": f"conv-{i // 500}",
                    "role": "user" if i % 2 == 0 else "assistant",
                    "speaker": "Ana" if i % 2 == 0 else "Bo",
                    "content": sentence(rng, rng.randint(6, 24)),
                    "timestamp": f"2024-{1 + (i // 500) % 12:02d}-{1 + (i % 28):02d}T10:00:00",
                    "id": f"D{i // 20}:{i % 20}",
                }
            )
        )
    for i in range(n_facts):
        lines.append(
            json.dumps(
                {
                    "type": "memory",
                    "kind": "fact" if i % 20 else "instruction",
                    "content": f"The user {sentence(rng, 8).lower()} (#{i})",
                    "importance": round(rng.random(), 2),
                }
            )
        )
    start = time.perf_counter()
    store.import_file(io.BytesIO("\n".join(lines).encode()))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--turns", type=int, default=60)
    ap.add_argument("--db", help="reuse this database (filled when empty)")
    args = ap.parse_args()
    rng = random.Random(7)
    path = Path(args.db) if args.db else Path(tempfile.mkdtemp()) / "bench.db"
    store = MemoryStore.open(path)
    have = store.conn.execute("SELECT count(*) FROM memories").fetchone()[0]
    if have < args.n:
        print(f"filling {args.n:,} memories …", flush=True)
        took = fill(store, args.n - have, rng)
        print(f"filled in {took:.1f} s ({(args.n - have) / took:,.0f} memories/s)")
    total = store.conn.execute("SELECT count(*) FROM memories").fetchone()[0]
    assistant = Assistant(store, Settings(model="bench/instant", budget=16_000))
    assistant._model = InstantModel()  # type: ignore[assignment]
    assistant.open_conversation()
    steps: dict[str, list[float]] = {"prepare": [], "reply": [], "after_reply": [], "turn": []}
    cities = ["Lyon", "Paris", "Porto", "Oslo"]
    for i in range(args.turns + 5):
        text = rng.choice(USER_LINES).format(
            city=rng.choice(cities),
            food=rng.choice(WORDS),
            company="Acme",
            word=rng.choice(WORDS),
            word2=rng.choice(WORDS),
        )
        t0 = time.perf_counter()
        prepared = assistant.prepare(text)
        t1 = time.perf_counter()
        sink: list[str] = []
        for _ in assistant.stream_reply(prepared, sink):
            pass
        t2 = time.perf_counter()
        assistant.after_reply(prepared)
        t3 = time.perf_counter()
        if i < 5:
            continue  # warm-up: tokenizer load, caches
        steps["prepare"].append(t1 - t0)
        steps["reply"].append(t2 - t1)
        steps["after_reply"].append(t3 - t2)
        steps["turn"].append(t3 - t0)
    print(f"memories: {total:,}; turns: {args.turns} (instant model, memory=summary-buffer)")
    for name, values in steps.items():
        ms = [v * 1000 for v in values]
        print(
            f"  {name:<12} p50 {statistics.median(ms):7.2f} ms   p95 {percentile(ms, 0.95):7.2f} ms"
        )
    print(f"turn overhead p50 {statistics.median(steps['turn']) * 1000:.1f} ms (target ≤ 30 ms)")
    store.close()


if __name__ == "__main__":
    main()
