"""Measure the secret gate: recall on the positive corpus, false positives on prose.

    .venv/bin/python bench/gate.py
    .venv/bin/python bench/gate.py --turns ../shared/data/locomo/messages.jsonl

Positives (tests/data/secrets/positives.jsonl) each carry the secret that must
be gone from the gated text; negatives (tests/data/secrets/negatives.jsonl) and
every LoCoMo turn are ordinary sentences that must pass unchanged. Prints the
recall, the false-positive rate on each negative set, every miss and every
flagged sentence, and the scan time per sentence.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memory.privacy.secrets_gate import scan  # noqa: E402

DATA = ROOT / "tests" / "data" / "secrets"
DEFAULT_TURNS = ROOT.parent / "shared" / "data" / "locomo" / "messages.jsonl"


def _lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def recall(positives: list[dict[str, str]]) -> list[str]:
    """The positives whose secret survives the gate."""
    misses = []
    for case in positives:
        result = scan(case["text"])
        if not result.findings or case["secret"] in result.text:
            misses.append(f"{case['text']!r} -> {result.text!r}")
    return misses


def flagged(texts: list[str]) -> list[str]:
    """The sentences the gate changes (each one a false positive)."""
    out = []
    for text in texts:
        result = scan(text)
        if result.findings or result.text != text:
            out.append(f"{result.findings} {text!r} -> {result.text!r}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=Path, default=DEFAULT_TURNS, help="LoCoMo messages.jsonl")
    args = parser.parse_args()
    positives = _lines(DATA / "positives.jsonl")
    negatives = [c["text"] for c in _lines(DATA / "negatives.jsonl")]
    turns = [c["content"] for c in _lines(args.turns)] if args.turns.exists() else []

    misses = recall(positives)
    found = len(positives) - len(misses)
    print(f"recall: {found}/{len(positives)} = {found / len(positives):.1%}")
    for miss in misses:
        print(f"  missed: {miss}")
    for name, texts in (("corpus negatives", negatives), ("LoCoMo turns", turns)):
        if not texts:
            print(f"{name}: not found")
            continue
        start = time.perf_counter()
        hits = flagged(texts)
        per = (time.perf_counter() - start) / len(texts) * 1e6
        print(
            f"false positives on {name}: {len(hits)}/{len(texts)} = "
            f"{len(hits) / len(texts):.2%} ({per:.0f} us per sentence)"
        )
        for hit in hits:
            print(f"  flagged: {hit}")


if __name__ == "__main__":
    main()
