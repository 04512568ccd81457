"""Mutation score of the modules that hold mem's promises, module by module.

    nice -n 19 python bench/mutation.py [--module retrieval ...] [--workers 1]

A test suite's pass rate says nothing about whether the tests can fail; a
mutation tester changes the code (``<`` to ``<=``, a constant, a dropped call)
and counts the changes some test notices ("killed"). This runs mutmut 3 over
retrieval and ranking, forgetting, the secret gate, consolidation and
import/export, each in its own copy of the project with a targeted test
selection (mutmut then runs, per mutant, only the selected tests that reach the
mutated function), and prints the share killed per module. Target: ≥ 85 %.

Not part of the README test run: it takes minutes per module. Run it niced on a
shared machine. ``--keep`` leaves the copies (``mutmut browse`` inside one
shows each survivor's diff).
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
    "transfer": [
        "tests/test_store.py",
        "tests/test_properties.py",
        "tests/test_fact_keys.py",
        "tests/test_transfer.py",
        "tests/test_lineage.py",
        "tests/test_scope.py",
        "tests/test_transfer_promises.py",
    ],
}
# module -> the files mutated for it (default: memory/<module>.py). Import/export is
# three files since the split; they are mutated and reported together as "transfer",
# with a line per file under the total.
FILES: dict[str, list[str]] = {
    "transfer": [
        "memory/transfer.py",
        "memory/transfer_import.py",
        "memory/transfer_export.py",
    ],
}
# Tests that drive `mem` in a subprocess or a pty: slow, and invisible to mutmut.
DESELECT = ["-k", "not sigkill and not pty and not subprocess"]
STATUSES = ("killed", "survived", "timeout", "suspicious", "no tests", "skipped", "segfault")


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
        # memory.transfer_import.x_read__mutmut_3 -> transfer_import
        file = name.strip().split(".")[1] if "." in name else "?"
        per_file.setdefault(file, dict.fromkeys(STATUSES, 0))[status] += 1
    return per_file


def tally(counts: dict[str, int]) -> tuple[int, int, int, float]:
    """(mutants, killed, other, killed %) from one status count."""
    total = sum(counts.values()) - counts["skipped"]
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
    r"^\s*(SELECT|UPDATE|INSERT|DELETE|WHERE|AND|OR|ORDER BY|VALUES|FROM|SET)\b|\?",
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


def run_module(
    module: str, workers: int, keep: bool
) -> tuple[dict[str, dict[str, int]], float, Path]:
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
    took = time.perf_counter() - start
    counts = count(dest)
    (dest / "survivors.txt").write_text("\n".join(survivors(dest)) + "\n")
    if not keep:
        shutil.copy(dest / "survivors.txt", Path(tempfile.gettempdir()) / f"{module}-survivors.txt")
        shutil.rmtree(dest, ignore_errors=True)
    return counts, took, dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--module", action="append", choices=sorted(TARGETS))
    ap.add_argument("--workers", type=int, default=1, help="mutmut children (default 1)")
    ap.add_argument("--keep", action="store_true", help="keep each module's copy")
    args = ap.parse_args()
    modules = args.module or list(TARGETS)
    print(
        f"{'module':<14} {'mutants':>7} {'killed':>7} {'survived':>8} {'other':>6} "
        f"{'killed %':>8} {'time':>7}"
    )
    for module in modules:
        per_file, took, dest = run_module(module, args.workers, args.keep)
        counts = dict.fromkeys(STATUSES, 0)
        for file_counts in per_file.values():
            for status, n in file_counts.items():
                counts[status] += n
        total, killed, other, share = tally(counts)
        flag = "" if share >= 85 else "  < 85 %"
        if not total:
            flag = f"  no mutant ran: see {dest / 'mutmut.log'} (with --keep)"
        print(
            f"{module:<14} {total:>7} {killed:>7} {counts['survived']:>8} {other:>6} "
            f"{share:>7.1f}% {took:>6.0f}s{flag}",
            flush=True,
        )
        if len(per_file) > 1:
            for file, file_counts in sorted(per_file.items()):
                f_total, f_killed, f_other, f_share = tally(file_counts)
                print(
                    f"  {file:<12} {f_total:>7} {f_killed:>7} {file_counts['survived']:>8} "
                    f"{f_other:>6} {f_share:>7.1f}%",
                    flush=True,
                )
        where = dest if args.keep else Path(tempfile.gettempdir()) / f"{module}-survivors.txt"
        print(f"  survivors: {where}", flush=True)


if __name__ == "__main__":
    main()
