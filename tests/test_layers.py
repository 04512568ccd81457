"""The import contracts of pyproject.toml hold: `lint-imports` exits 0.

They keep the engine free of the CLI and its terminal libraries and forbid
the cycles mem once hid behind lazy imports (store and its verbs, db and
crypto, llm and the offline model, the REPL and the chat command)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def test_import_contracts_are_kept() -> None:
    if not LINT_IMPORTS.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(_contracts())} kept, 0 broken" in done.stdout


def test_each_former_cycle_has_a_contract() -> None:
    forbidden = {
        (str(source), str(target))
        for c in _contracts()
        if c["type"] == "forbidden"
        for source in c["source_modules"]  # type: ignore[attr-defined]
        for target in c["forbidden_modules"]  # type: ignore[attr-defined]
    }
    for pair in [
        ("memory.store", "memory.retrieval"),
        ("memory.store", "memory.forgetting"),
        ("memory.store", "memory.transfer"),
        ("memory.crypto", "memory.db"),
        ("memory.local_model", "memory.llm"),
        ("cli.repl", "cli.chat"),
        ("memory", "cli"),
        ("memory", "typer"),
    ]:
        assert pair in forbidden, pair
    acyclic = [c for c in _contracts() if c["type"] == "acyclic_siblings"]
    assert acyclic and {"memory", "cli"} <= set(acyclic[0]["ancestors"])  # type: ignore[arg-type]
