"""Benchmark `mem add`: index a large synthetic tree, then add it again.

    .venv/bin/python bench/add.py                 # 10,000 files, ~100 MB
    .venv/bin/python bench/add.py --files 1000 --mb 10

Generates a deterministic tree of Markdown, plain-text and Python files (the
same bytes on every run) in a temporary folder, indexes it into a fresh
database in a child process, and prints files, MB, seconds, MB/s, chunks and
the child's peak RSS (``ru_maxrss``); then adds the unchanged tree again
(which must add 0 chunks) and changes one file (which must re-chunk only it):
both are checked, and a broken promise exits 1.

Then the user's command, ``mem add FOLDER`` as a subprocess into its own fresh
MEM_HOME, timed from outside (interpreter start, imports, the add, the JSON
report), first add and re-add, beside the in-process figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYLLABLES = "ka ro mi te su na lo vi pe da shi ko ra ne tu mo ba ge li fa zo ri ya hu".split()


def _vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def _sentence(rng: random.Random, vocab: list[str]) -> str:
    words = [rng.choice(vocab) for _ in range(rng.randint(6, 18))]
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random, vocab: list[str]) -> str:
    return " ".join(_sentence(rng, vocab) for _ in range(rng.randint(2, 6)))


def _markdown(rng: random.Random, vocab: list[str], target: int) -> str:
    out = [f"# {rng.choice(vocab).title()} {rng.choice(vocab)}\n"]
    size = len(out[0])
    while size < target:
        roll = rng.random()
        if roll < 0.12:
            level = rng.choice(("##", "##", "###"))
            part = f"{level} {rng.choice(vocab).title()} {rng.choice(vocab)}\n"
        elif roll < 0.2:
            items = "\n".join(f"- {_sentence(rng, vocab)}" for _ in range(rng.randint(2, 5)))
            part = items + "\n"
        elif roll < 0.26:
            body = "\n".join(f"    {rng.choice(vocab)} = {rng.randint(0, 999)}" for _ in range(4))
            part = f"```python\ndef {rng.choice(vocab)}():\n{body}\n```\n"
        else:
            part = _paragraph(rng, vocab) + "\n"
        out.append(part)
        size += len(part) + 1
    return "\n".join(out)


def _text(rng: random.Random, vocab: list[str], target: int) -> str:
    out: list[str] = []
    size = 0
    while size < target:
        part = _paragraph(rng, vocab)
        out.append(part)
        size += len(part) + 2
    return "\n\n".join(out) + "\n"


def _python(rng: random.Random, vocab: list[str], target: int) -> str:
    out = [f'"""{_sentence(rng, vocab)}"""\n\nimport os\n']
    size = len(out[0])
    while size < target:
        name = rng.choice(vocab)
        lines = [f"def {name}_{rng.randint(0, 99)}(value):", f'    """{_sentence(rng, vocab)}"""']
        for _ in range(rng.randint(3, 12)):
            lines.append(f"    {rng.choice(vocab)} = value + {rng.randint(0, 9999)}")
        lines.append(f"    return {rng.choice(vocab)}\n")
        part = "\n".join(lines)
        out.append(part)
        size += len(part) + 1
    return "\n".join(out)


def generate(folder: Path, files: int, megabytes: float, seed: int = 7) -> int:
    """Write the tree; returns its size in bytes."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng)
    mean = megabytes * 1e6 / files
    total = 0
    for i in range(files):
        sub = folder / f"d{i // 500:03d}" / f"s{(i // 50) % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        target = int(mean * rng.uniform(0.5, 1.5))
        kind = i % 10
        if kind < 6:
            path, text = sub / f"doc{i:05d}.md", _markdown(rng, vocab, target)
        elif kind < 8:
            path, text = sub / f"note{i:05d}.txt", _text(rng, vocab, target)
        else:
            path, text = sub / f"mod{i:05d}.py", _python(rng, vocab, target)
        data = text.encode()
        path.write_bytes(data)
        total += len(data)
    (folder / ".gitignore").write_text("*.tmp\n")
    return total


def worker(corpus: str, db: str, touch: str | None) -> None:
    """The measured process: one `add_documents` over the tree."""
    sys.path.insert(0, str(ROOT))
    from memory import MemoryStore
    from memory.knowledge.documents import add_documents

    if touch:
        with open(touch, "a", encoding="utf-8") as handle:
            handle.write("\nOne more paragraph, written by the benchmark.\n")
    started = time.perf_counter()
    with MemoryStore.open(db) as store:
        report = add_documents(store, [corpus])
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    data = report.to_dict()
    data.pop("changes")
    data |= {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime}
    print(json.dumps(data | {"peak_rss_mb": usage.ru_maxrss / 1024}))  # ru_maxrss: KiB


def run_worker(corpus: Path, db: Path, touch: Path | None = None) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--worker", str(corpus), str(db)]
    if touch:
        cmd += ["--touch", str(touch)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run_cli(corpus: Path, home: Path) -> tuple[float, dict[str, object]]:
    """`mem add CORPUS --json` as the user runs it; wall seconds and its report."""
    env = dict(os.environ, MEM_HOME=str(home), PYTHONPATH=str(ROOT), NO_COLOR="1")
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "add", str(corpus), "--json"],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"mem add failed (exit {out.returncode}): {out.stderr.strip()}")
    return seconds, dict(json.loads(out.stdout))


def check(failures: list[str], ok: bool, what: str) -> str:
    if not ok:
        failures.append(what)
    return "ok" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--keep", help="Generate into (or reuse) this folder and keep it.")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--touch", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.touch)
        return
    scratch = Path(tempfile.mkdtemp(prefix="mem-bench-add-"))
    corpus = Path(args.keep) if args.keep else scratch / "corpus"
    try:
        if corpus.exists() and any(corpus.iterdir()):
            size = sum(p.stat().st_size for p in corpus.rglob("*") if p.is_file())
            print(f"reusing {corpus}")
        else:
            corpus.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            size = generate(corpus, args.files, args.mb)
            print(
                f"generated {args.files} files, {size / 1e6:.1f} MB in "
                f"{time.perf_counter() - started:.1f} s"
            )
        db = scratch / "mem.db"
        first = run_worker(corpus, db)
        mb = size / 1e6
        rate = mb / float(first["seconds"])  # type: ignore[arg-type]
        print(f"files      {first['files']}")
        print(f"MB         {mb:.1f}")
        print(f"seconds    {float(first['seconds']):.1f}")  # type: ignore[arg-type]
        print(f"MB/s       {rate:.2f}")
        cpu = float(first["cpu_seconds"])  # type: ignore[arg-type]
        print(f"CPU        {cpu:.1f} s ({mb / cpu:.2f} MB per CPU second)")
        print(f"chunks     {first['chunks_added']}")
        print(f"peak RSS   {float(first['peak_rss_mb']):.0f} MB")  # type: ignore[arg-type]
        print(f"db size    {os.path.getsize(db) / 1e6:.0f} MB")
        failures: list[str] = []
        again = run_worker(corpus, db)
        verdict = check(
            failures,
            again["chunks_added"] == 0 and again["unchanged"] == first["files"],
            f"re-add must add 0 chunks and leave {first['files']} files unchanged",
        )
        print(
            f"re-add     {float(again['seconds']):.1f} s, "  # type: ignore[arg-type]
            f"{again['chunks_added']} chunks added, {again['unchanged']} unchanged  [{verdict}]"
        )
        one = next(p for p in sorted(corpus.rglob("*.md")))
        changed = run_worker(corpus, db, touch=one)
        verdict = check(
            failures,
            changed["changed"] == 1 and int(changed["chunks_added"]) > 0,  # type: ignore[call-overload]
            "one changed file must be re-chunked, and only it",
        )
        print(
            f"one change {float(changed['seconds']):.1f} s, "  # type: ignore[arg-type]
            f"{changed['changed']} file re-chunked into {changed['chunks_added']} chunks"
            f"  [{verdict}]"
        )
        # The user's command, end to end, on the same tree (now with the changed file).
        home = scratch / "cli-home"
        cli_first, cli_report = run_cli(corpus, home)
        cli_again, cli_again_report = run_cli(corpus, home)
        verdict = check(
            failures,
            cli_again_report["chunks_added"] == 0,
            "`mem add` again must add 0 chunks",
        )
        print("\n`mem add` as a subprocess (interpreter start to exit) vs in-process add:")
        print(
            f"  first add  {cli_first:7.1f} s  ({mb / cli_first:.2f} MB/s; in-process "
            f"{float(first['seconds']):.1f} s), {cli_report['chunks_added']} chunks"
        )
        print(
            f"  re-add     {cli_again:7.1f} s  (in-process {float(again['seconds']):.1f} s), "
            f"{cli_again_report['chunks_added']} chunks added  [{verdict}]"
        )
        if failures:
            raise SystemExit("FAILED: " + "; ".join(failures))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
