"""Bad-input rows for issue 12 items 7–9, printed by bench/faults.py.

    .venv/bin/python bench/faults.py --only bad

Huge numbers (item 7), unbounded lines (item 8: ``mem import /dev/zero``, a
huge line piped to ``mem search -``) and unusual files for ``mem add`` (item 9:
a FIFO, a name that is not UTF-8, a symlink leaving the folder). Each row
prints the exit code and the first stderr line beside what the issue expects.
They stay out of ``faults.CASES`` (which tests/test_faults.py asserts on) until
the fixes land; the lead moves them in after the merge.

Every child runs under an address-space limit and a timeout, so an unbounded
read ends as a MemoryError or a kill here instead of exhausting the machine.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import faults
from faults import Run

HUGE = "99999999999999999999"
MEMORY_LIMIT = 1536 * 1024 * 1024  # bytes of address space per child
TIMEOUT = 60.0


@dataclass
class Row:
    name: str
    args: list[str]  # "TREE" stands for the row's folder
    expected: str
    check: Callable[[Run, Path], bool]
    stdin: bytes | None = None
    tree: Callable[[Path], None] | None = None


@dataclass
class RowResult:
    row: Row
    run: Run
    ok: bool


def _clean(run: Run) -> bool:
    return run.clean_error and run.code == 2 and "unexpected" not in run.stderr


def _names_limit(run: Run, _: Path) -> bool:
    return _clean(run) and re.search(r"\d+ [KM]B", run.stderr) is not None


def _tree_fifo(tree: Path) -> None:
    (tree / "note.md").write_text("# Note\n\nA regular file.\n")
    os.mkfifo(tree / "pipe.md")


def _tree_bad_name(tree: Path) -> None:
    (tree / "note.md").write_text("# Note\n\nA regular file.\n")
    os.makedirs(os.fsencode(tree) + b"/caf\xe9", exist_ok=True)
    with open(os.fsencode(tree) + b"/caf\xe9/menu\xff.md", "wb") as f:
        f.write(b"# Menu\n\nSoup of the day.\n")


def _tree_symlink(tree: Path) -> None:
    outside = tree.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.md").write_text("# Outside\n\nNot under the added folder.\n")
    (tree / "note.md").write_text("# Note\n\nA regular file.\n")
    (tree / "escape").symlink_to(outside, target_is_directory=True)
    (tree / "linked.md").symlink_to(outside / "secret.md")


def _added(run: Run, box: Path, want: int, note: str) -> bool:
    docs = faults.run_mem(["docs"], box / "home").stdout
    return run.code == 0 and docs.count(".md") == want and note in run.stderr.lower()


ROWS: list[Row] = [
    *(
        Row(
            f"{' '.join(args)} {HUGE[:6]}…",
            [*args, HUGE],
            "exit 2, one line naming the option's range; no 'unexpected'",
            lambda run, _: _clean(run),
        )
        for args in (["search", "x", "--limit"], ["list", "-n"], ["conversations", "-n"])
    ),
    *(
        Row(
            f"{args[0]} {HUGE[:6]}…",
            [*args],
            "a one-line error (no such id, or out of range); no 'unexpected'",
            lambda run, _: run.clean_error and "unexpected" not in run.stderr,
        )
        for args in (["show", HUGE], ["forget", HUGE, "--yes"])
    ),
    Row(
        "import /dev/zero (one endless line)",
        ["import", "/dev/zero"],
        "exit 2, one line giving the line-length limit; memory bounded",
        _names_limit,
    ),
    Row(
        "search -: a 64 MB line",
        ["search", "-"],
        "exit 2, one line giving the line-length limit",
        _names_limit,
        stdin=b"zorblax " * (8 * 1024 * 1024),
    ),
    Row(
        "add: a FIFO in the folder",
        ["add", "TREE"],
        "exit 0 at once; the FIFO skipped with a note; note.md indexed",
        lambda run, box: _added(run, box, 1, "skip"),
        tree=_tree_fifo,
    ),
    Row(
        "add: a file name that is not UTF-8",
        ["add", "TREE"],
        "exit 0; both files indexed (the name with surrogate escapes)",
        lambda run, box: _added(run, box, 2, ""),
        tree=_tree_bad_name,
    ),
    Row(
        "add: a symlink leaving the folder",
        ["add", "TREE"],
        "exit 0; the link not followed (only note.md), unless --follow-links",
        lambda run, box: _added(run, box, 1, ""),
        tree=_tree_symlink,
    ),
]


def _limits() -> None:  # in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_row(row: Row, work: Path) -> RowResult:
    box = work / "".join(c if c.isalnum() else "-" for c in row.name)
    home = box / "home"
    home.mkdir(parents=True)
    tree = box / "tree"
    tree.mkdir()
    if row.tree:
        row.tree(tree)
    args = [str(tree) if a == "TREE" else a for a in row.args]
    try:
        run = faults.run_mem(args, home, stdin=row.stdin, preexec=_limits, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        run = Run(args, -9, "", f"(killed: still running after {TIMEOUT:.0f} s)", TIMEOUT)
    return RowResult(row, run, row.check(run, box))


def bad_inputs_more(work: Path) -> list[RowResult]:
    return [run_row(row, work) for row in ROWS]


def print_more(results: list[RowResult]) -> None:
    print("\n## Bad input, issue 12 items 7–9 (exit code and first stderr line)")
    for r in results:
        first = (r.run.stderr.strip().splitlines() or ["(no stderr)"])[0][:110]
        mark = "ok" if r.ok else "observed ≠ expected"
        print(f"  {r.row.name}\n    expected: {r.row.expected}")
        print(f"    observed: exit {r.run.code}: {first}  [{mark}]")
    ok = sum(r.ok for r in results)
    print(f"  {ok}/{len(results)} as expected")
