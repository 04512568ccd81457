"""Mutation score of the modules that hold mem's promises, module by module.

    nice -n 19 python bench/mutation.py [--module retrieval ...] [--workers 1]

A test suite's pass rate says nothing about whether the tests can fail; a
mutation tester changes the code (``<`` to ``<=``, a constant, a dropped call)
and counts the changes some test notices ("killed"). This runs mutmut 3 over
retrieval and ranking, forgetting, the secret gate, consolidation and
import/export, each in its own copy of the project with a targeted test
selection (mutmut then runs, per mutant, only the selected tests that reach the
mutated function), and prints the share killed per module. Target: ≥ 85 %.

Import/export is three files (transfer, transfer_import, transfer_export),
mutated together as "transfer" with a row per file under the total. A survivor
that only changes the letter case of SQL text (keywords, table and column
names; quoted values must be unchanged) is an equivalent mutant: it is counted
under "sql-eq", and "excl. eq" is the share killed without them. Both figures
are printed; the target applies to the first.

Not part of the README test run: it takes minutes per module. Run it niced on a
shared machine. ``--keep`` leaves the copies (``mutmut browse`` inside one
shows each survivor's diff; after more ``mutmut run NAME...`` in a copy,
``--report DIR`` prints its row again). survivors.txt in a copy lists the
survivors that are not SQL-case equivalents.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The console script, not `python -m mutmut`: -m puts the copy's own unmutated
# `memory/` first on sys.path, so no test would ever reach a mutant.
MUTMUT = str(Path(sys.executable).parent / "mutmut")

# module -> the tests that exercise its promises (in-process: mutmut only sees calls
# made in the pytest process, so subprocess-driven tests would not count).
TARGETS: dict[str, list[str]] = {
    "retrieval": [
        "tests/test_retrieval.py",
        "tests/test_store.py",
        "tests/test_privacy.py",
        "tests/test_documents.py",  # --where filters
        "tests/test_scope.py",
        "tests/test_retrieval_promises.py",
    ],
    "ranking": [
        "tests/test_retrieval.py",
        "tests/test_store.py",
        "tests/test_scope.py",
        "tests/test_retrieval_promises.py",
        "tests/test_ranking_rules.py",
    ],
    "forgetting": [
        "tests/test_store.py",
        "tests/test_privacy.py",
        "tests/test_cli_memory.py",
        "tests/test_lineage.py",
        "tests/test_scope.py",
        "tests/test_forgetting_promises.py",
    ],
    "secrets_gate": [
        "tests/test_privacy.py",
        "tests/test_store.py",
        "tests/test_secrets_gate.py",
        "tests/test_transfer.py",
        "tests/test_gate_promises.py",
    ],
    "consolidation": [
        "tests/test_assistant.py",
        "tests/test_store.py",
        "tests/test_fact_keys.py",
        "tests/test_lineage.py",
        "tests/test_write_lock.py",
        "tests/test_consolidation_rules.py",
    ],
    # Not test_fact_keys.py nor test_lineage.py: they import only on the way to
    # extraction and forgetting, and cost ~8 s more for each surviving mutant of
    # the ~1,900 (a run would take hours on two shared cores).
    "transfer": [
        "tests/test_store.py",
        "tests/test_properties.py",
        "tests/test_transfer.py",
        "tests/test_scope.py",
        "tests/test_transfer_promises.py",
    ],
}
# module -> the files mutated for it (default: memory/<module>.py). Import/export is
# three files since the split; they are mutated and reported together as "transfer",
# with a line per file under the total.
FILES: dict[str, list[str]] = {
    "transfer": [
        "memory/lifecycle/transfer.py",
        "memory/lifecycle/transfer_import.py",
        "memory/lifecycle/transfer_export.py",
    ],
}
# Tests that kill `mem` or drive it in a subprocess: slow, and invisible to mutmut.
# -k matches substrings of test names and parameter ids: a bare "pty" also left
# out every test named or parametrised with "empty" (test_schema_from_empty_file,
# test_edges_empty_missing_and_unscored, '"content" is empty' ...), so the words
# here must not occur inside other words.
DESELECT = ["-k", "not sigkill and not subprocess_reaches"]
STATUSES = (
    "killed",
    "survived",
    "timeout",
    "suspicious",
    "no tests",
    "skipped",
    "segfault",
    "not checked",
)


def project_copy(dest: Path) -> None:
    """The tracked files of the working tree (with uncommitted edits) in ``dest``."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for raw in files:
        if not raw:
            continue
        rel = Path(os.fsdecode(raw))
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def configure(dest: Path, module: str, tests: list[str]) -> None:
    """Point mutmut at one module and its tests (appended to the copy's pyproject)."""
    selection = [*tests, "-p", "no:cacheprovider", "-s", *DESELECT]
    block = (
        "\n[tool.mutmut]\n"
        f'source_paths = ["memory"]\n'
        f"only_mutate = {json.dumps(FILES.get(module, [f'memory/{module}.py']))}\n"
        f'also_copy = ["cli", "bench", "tools", "README.md"]\n'
        f"pytest_add_cli_args_test_selection = {json.dumps(selection)}\n"
    )
    with open(dest / "pyproject.toml", "a", encoding="utf-8") as f:
        f.write(block)


def count(dest: Path) -> dict[str, dict[str, int]]:
    """Mutant statuses per mutated file, as ``mutmut results --all true`` lists them."""
    out = subprocess.run(
        [MUTMUT, "results", "--all", "true"],
        cwd=dest,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    per_file: dict[str, dict[str, int]] = {}
    for line in out.splitlines():
        name, _, status = line.rpartition(": ")
        status = status.strip()
        if status not in STATUSES:
            continue
        # memory.lifecycle.transfer_import.x_read__mutmut_3 -> transfer_import
        file = name.strip().split(".")[1] if "." in name else "?"
        per_file.setdefault(file, dict.fromkeys(STATUSES, 0))[status] += 1
    return per_file


def tally(counts: dict[str, int]) -> tuple[int, int, int, float]:
    """(mutants checked, killed, other, killed %) from one status count."""
    total = sum(counts.values()) - counts["skipped"] - counts["not checked"]
    killed = counts["killed"] + counts["timeout"] + counts["segfault"]
    other = total - killed - counts["survived"]
    return total, killed, other, (100 * killed / total if total else 0.0)


def survivors(dest: Path) -> list[str]:
    out = subprocess.run(
        [MUTMUT, "results"],
        cwd=dest,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [line.strip().rpartition(":")[0] for line in out.splitlines() if "survived" in line]


# A survivor that only changes the letter case of an SQL string (keywords, table
# and column names) is an equivalent mutant: SQLite does not see the difference.
# Quoted SQL literals such as 'message' are case-sensitive and must be unchanged.
SQL_TEXT = re.compile(
    r"^\s*(SELECT|UPDATE|INSERT|DELETE|WHERE|AND|OR|ORDER BY|VALUES|FROM|SET|ON|PRAGMA)\b|\?",
    re.IGNORECASE,
)


def sql_case_only(diff: str) -> bool:
    """True when ``diff`` (``mutmut show``) only changes the case of SQL text."""
    removed = [line[1:] for line in diff.splitlines() if line.startswith("-") and line[1:2] != "-"]
    added = [line[1:] for line in diff.splitlines() if line.startswith("+") and line[1:2] != "+"]
    if not removed or len(removed) != len(added):
        return False
    for old, new in zip(removed, added, strict=True):
        if old == new or old.lower() != new.lower():
            return False
        if re.findall(r"'[^']*'", old) != re.findall(r"'[^']*'", new):
            return False  # a quoted SQL value such as 'message' changed
        literals = re.findall(r'"([^"]*)"', old)
        changed = [
            a for a, b in zip(literals, re.findall(r'"([^"]*)"', new), strict=False) if a != b
        ]
        if not changed or not all(SQL_TEXT.search(text) for text in changed):
            return False
    return True


def equivalent_sql_case(dest: Path, names: list[str]) -> list[str]:
    """The survivors among ``names`` that only change the case of SQL text."""
    found = []
    for name in names:
        diff = subprocess.run(
            [MUTMUT, "show", name], cwd=dest, capture_output=True, text=True, check=False
        ).stdout
        if sql_case_only(diff):
            found.append(name)
    return found


def run_module(module: str, workers: int) -> tuple[float, Path]:
    dest = Path(tempfile.mkdtemp(prefix=f"mem-mutation-{module}-"))
    project_copy(dest)
    configure(dest, module, TARGETS[module])
    # The folder must exist before the interpreter starts: Python caches "no such
    # directory" for a sys.path entry, and the tests would import nothing mutated.
    (dest / "mutants").mkdir()
    env = dict(os.environ, MEM_NO_LOCAL_MODEL="1", PYTHONPATH=str(dest / "mutants"))
    start = time.perf_counter()
    log = dest / "mutmut.log"
    with open(log, "w", encoding="utf-8") as f:
        subprocess.run(
            [MUTMUT, "run", "--max-children", str(workers)],
            cwd=dest,
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return time.perf_counter() - start, dest


def report(module: str, dest: Path, took: float | None) -> None:
    """One module's row (and a row per file when several were mutated); the
    survivors, and those that only change the case of SQL, in ``dest``."""
    per_file = count(dest)
    names = survivors(dest)
    equivalent = equivalent_sql_case(dest, names)
    (dest / "survivors.txt").write_text("\n".join(n for n in names if n not in equivalent) + "\n")
    (dest / "equivalent.txt").write_text("\n".join(equivalent) + "\n")
    counts = dict.fromkeys(STATUSES, 0)
    for file_counts in per_file.values():
        for status, n in file_counts.items():
            counts[status] += n
    total, killed, other, share = tally(counts)
    unchecked = counts["not checked"]
    sql = len(equivalent)
    honest = 100 * killed / (total - sql) if total - sql else 0.0
    flag = "" if share >= 85 else "  < 85 %"
    if not total:
        flag = f"  no mutant ran: see {dest / 'mutmut.log'} (with --keep)"
    if unchecked:
        flag += f"  ({unchecked} more not checked: the run was stopped)"
    spent = "" if took is None else f"{took:>6.0f}s"
    print(
        f"{module:<14} {total:>7} {killed:>7} {counts['survived']:>8} {sql:>7} {other:>6} "
        f"{share:>7.1f}% {honest:>8.1f}% {spent:>7}{flag}",
        flush=True,
    )
    if len(per_file) > 1:
        for file, file_counts in sorted(per_file.items()):
            f_total, f_killed, f_other, f_share = tally(file_counts)
            f_sql = sum(1 for n in equivalent if n.split(".")[1] == file)
            f_honest = 100 * f_killed / (f_total - f_sql) if f_total - f_sql else 0.0
            print(
                f"  {file:<16}{f_total:>7} {f_killed:>7} {file_counts['survived']:>8} "
                f"{f_sql:>7} {f_other:>6} {f_share:>7.1f}% {f_honest:>8.1f}%",
                flush=True,
            )
    print(f"  survivors: {dest / 'survivors.txt'}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--module", action="append", choices=sorted(TARGETS))
    ap.add_argument("--workers", type=int, default=1, help="mutmut children (default 1)")
    ap.add_argument("--keep", action="store_true", help="keep each module's copy")
    ap.add_argument(
        "--report",
        metavar="DIR",
        type=Path,
        help="print the row of a copy kept with --keep (after more `mutmut run` in it)",
    )
    args = ap.parse_args()
    modules = args.module or list(TARGETS)
    print(
        f"{'module':<14} {'mutants':>7} {'killed':>7} {'survived':>8} {'sql-eq':>7} "
        f"{'other':>6} {'killed %':>8} {'excl. eq':>9} {'time':>7}"
    )
    if args.report:
        report(args.report.name.split("-")[2], args.report, None)
        return
    for module in modules:
        took, dest = run_module(module, args.workers)
        report(module, dest, took)
        if not args.keep:
            for name in ("survivors.txt", "equivalent.txt"):
                shutil.copy(dest / name, Path(tempfile.gettempdir()) / f"{module}-{name}")
            shutil.rmtree(dest, ignore_errors=True)
            print(f"  (copied to {tempfile.gettempdir()}/{module}-survivors.txt)", flush=True)


if __name__ == "__main__":
    main()
