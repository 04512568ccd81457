"""Pipeline overhead of one assistant turn: everything but the model.

    python bench/turn.py [--n 100000] [--turns 60] [--db PATH]

Fills a database with N synthetic memories (messages in many conversations
plus facts and instructions) through the real import path, then runs turns
whose model is a stand-in that answers instantly, and prints the median and
p95 of the whole turn and of its steps: prepare (log the message, retrieve,
assemble the prompt), log the reply, and after_reply (extraction,
consolidation, summary folding). Target: ≤ 30 ms per turn at 100k memories.

Three configurations run on the same turns, side by side, each with the
memory changes it made per turn (a turn that forms no memory is the easy case):

- ``old: empty extraction``: the stand-in answers extraction with
  ``{"facts": []}`` (the configuration earlier figures came from; 0 changes);
- ``model facts``: the stand-in answers extraction with the facts a real model
  would give for the user's line (location, food, employer, decisions), whose
  cities and foods vary so later facts contradict earlier ones (supersede);
- ``offline rules``: the offline extraction rules (what ``local/…`` models use).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory import MemoryStore  # noqa: E402
from memory.assistant.turn import Assistant, Settings  # noqa: E402
from memory.eval.evaluation import percentile  # noqa: E402
from memory.lifecycle.transfer import import_file  # noqa: E402
from memory.models.llm import Usage  # noqa: E402

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
    """Stands in for the provider so only mem's own work is timed. ``facts``
    chooses its extraction answer: none, or what the user's line states."""

    name = "bench/instant"

    def __init__(self, facts: bool = False) -> None:
        self.usage = Usage()
        self.facts = facts

    def stream(self, messages: list[dict[str, str]], **_: object) -> Iterator[str]:
        yield "Sure, "
        yield "here is an answer."

    def complete(self, messages: list[dict[str, str]], **_: object) -> str:
        if not self.facts:
            return '{"facts": []}'
        return json.dumps({"facts": facts_for(messages[-1]["content"])})

    def context_window(self) -> int:
        return 128_000


def facts_for(prompt: str) -> list[dict[str, object]]:
    """The facts a capable model would extract from the newest user line of an
    extraction prompt (``[i] user: …``), in the extraction schema."""
    lines = [line for line in prompt.splitlines() if re.match(r"\[\d+\] user: ", line)]
    if not lines:
        return []
    index_text, _, said = lines[-1].partition(" user: ")
    index = int(index_text.strip("[]"))

    def fact(text: str, slot: str | None, value: str | None, weight: float) -> dict[str, object]:
        return {
            "text": text,
            "kind": "fact",
            "slot": slot,
            "value": value,
            "negated": False,
            "importance": weight,
            "confidence": 0.9,
            "source_index": index,
        }

    if m := re.match(r"I live in (\w+)", said):
        return [fact(f"The user lives in {m[1]}.", "location", m[1], 0.8)]
    if m := re.match(r"My favourite food is (\w+)", said):
        return [fact(f"The user's favourite food is {m[1]}.", "preference:food", m[1], 0.6)]
    if m := re.match(r"I work at (\w+) as an? (\w+)", said):
        return [
            fact(f"The user works at {m[1]}.", "employer", m[1], 0.7),
            fact(f"The user is an {m[2]}.", "job", m[2], 0.6),
        ]
    if m := re.match(r"I decided to learn (\w+)", said):
        return [fact(f"The user is learning {m[1]}.", None, None, 0.5)]
    return []  # questions and requests state nothing durable


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
    import_file(store, io.BytesIO("\n".join(lines).encode()))
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
    store.close()
    # Each configuration on its own copy of the filled database, on the same turns.
    texts = turn_texts(random.Random(11), args.turns + WARM_UP)
    results = [run_config(path, name, model, facts, texts) for name, model, facts in CONFIGS]
    print(f"memories: {total:,}; turns: {args.turns} (+{WARM_UP} warm-up), memory=summary-buffer")
    print(f"  {'configuration':<22} {'step':<12} {'p50 ms':>8} {'p95 ms':>8}")
    for name, steps, _ in results:
        for step, values in steps.items():
            ms = [v * 1000 for v in values]
            print(
                f"  {name:<22} {step:<12} {statistics.median(ms):8.2f} {percentile(ms, 0.95):8.2f}"
            )
    print("\n  memory changes per turn (after the warm-up):")
    for name, _, changes in results:
        counts: dict[str, int] = {}
        for turn in changes:
            for action in turn:
                counts[action] = counts.get(action, 0) + 1
        made = sum(v for k, v in counts.items() if k != "ignore")
        by_kind = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
        print(f"  {name:<22} {made / len(changes):5.2f} per turn ({made} in all: {by_kind})")
    print()
    for name, steps, _ in results:
        print(
            f"turn overhead p50 {statistics.median(steps['turn']) * 1000:6.1f} ms  "
            f"({name}; target ≤ 30 ms)"
        )


WARM_UP = 5
CONFIGS = [
    ("old: empty extraction", "bench/instant", False),
    ("model facts", "bench/instant", True),
    ("offline rules", "local/bench", False),
]


def turn_texts(rng: random.Random, n: int) -> list[str]:
    cities = ["Lyon", "Paris", "Porto", "Oslo"]
    return [
        rng.choice(USER_LINES).format(
            city=rng.choice(cities),
            food=rng.choice(WORDS),
            company="Acme",
            word=rng.choice(WORDS),
            word2=rng.choice(WORDS),
        )
        for _ in range(n)
    ]


def run_config(
    filled: Path, name: str, model: str, facts: bool, texts: list[str]
) -> tuple[str, dict[str, list[float]], list[list[str]]]:
    """Time ``texts`` as turns on a copy of ``filled``; the steps and each turn's changes."""
    copy = Path(tempfile.mkdtemp()) / "bench.db"
    shutil.copy(filled, copy)
    store = MemoryStore.open(copy)
    assistant = Assistant(store, Settings(model=model, budget=16_000))
    assistant._model = InstantModel(facts)  # type: ignore[assignment]
    assistant.open_conversation()
    steps: dict[str, list[float]] = {"prepare": [], "reply": [], "after_reply": [], "turn": []}
    changes: list[list[str]] = []
    for i, text in enumerate(texts):
        t0 = time.perf_counter()
        prepared = assistant.prepare(text)
        t1 = time.perf_counter()
        sink: list[str] = []
        for _ in assistant.stream_reply(prepared, sink):
            pass
        t2 = time.perf_counter()
        made = assistant.after_reply(prepared)
        t3 = time.perf_counter()
        if i < WARM_UP:
            continue  # warm-up: tokenizer load, caches
        steps["prepare"].append(t1 - t0)
        steps["reply"].append(t2 - t1)
        steps["after_reply"].append(t3 - t2)
        steps["turn"].append(t3 - t0)
        changes.append([c.action for c in made])
    store.close()
    shutil.rmtree(copy.parent, ignore_errors=True)
    return name, steps, changes


if __name__ == "__main__":
    main()
