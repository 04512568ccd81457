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
        ("memory.store", "memory.lifecycle"),
        ("memory.storage", "memory.retrieval"),
        ("memory.models", "memory.assistant"),  # the model seam and prompt assembly
        ("memory.storage.sqlite.crypto", "memory.storage.sqlite.db"),
        ("memory.models.local_model", "memory.models.llm"),
        ("cli.repl", "cli.chat"),
        ("memory", "cli"),
        ("memory", "typer"),
    ]:
        assert pair in forbidden, pair
    acyclic = [c for c in _contracts() if c["type"] == "acyclic_siblings"]
    assert acyclic and {"memory", "cli"} <= set(acyclic[0]["ancestors"])  # type: ignore[arg-type]


def test_every_engine_package_is_in_a_layer_or_beside_them() -> None:
    """A new subpackage of memory must be placed: in the layers, or forbidden to reach them."""
    layers = next(c for c in _contracts() if c.get("containers") == ["memory"])
    placed = {
        name.strip()
        for layer in layers["layers"]  # type: ignore[attr-defined]
        for name in str(layer).split("|")
    }
    beside = {
        str(m).removeprefix("memory.")
        for c in _contracts()
        if c["type"] == "forbidden" and "memory.store" in c["forbidden_modules"]  # type: ignore[operator]
        for m in c["source_modules"]  # type: ignore[attr-defined]
    }
    packages = {p.name for p in (ROOT / "memory").iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in (ROOT / "memory").glob("*.py") if p.stem != "__init__"}
    wiring = {"default_plugins"}  # names the built-in plugins; loaded by name, imported by none
    assert packages - {"data"} <= placed | beside, packages - placed - beside
    assert modules - wiring <= placed | beside, modules - wiring - placed - beside


# README's "Python API" names the first three; memory.mcp_server is `mem mcp`'s front end
PUBLIC = {"memory", "memory.errors", "memory.config", "memory.mcp_server"}


def _engine_modules() -> set[str]:
    """Every module and subpackage directly under memory/ (data is no code)."""
    names = {p.name for p in (ROOT / "memory").iterdir() if (p / "__init__.py").exists()}
    names |= {p.stem for p in (ROOT / "memory").glob("*.py") if p.stem != "__init__"}
    return {f"memory.{name}" for name in names - {"data"}}


def test_the_cli_imports_only_the_public_api() -> None:
    """Each `import memory…` / `from memory… import` in cli/ (in functions and
    under TYPE_CHECKING too) names a public module, and a name `memory` exports."""
    import ast

    import memory

    exported = set(memory.__all__) | {"__version__"}
    wrong: list[str] = []
    for path in sorted((ROOT / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
                if node.module == "memory":
                    names = {alias.name for alias in node.names}
                    wrong += [f"{path.name}: memory.{n}" for n in sorted(names - exported)]
            else:
                continue
            for module in modules:
                if module.split(".")[0] == "memory" and module not in PUBLIC:
                    wrong.append(f"{path.name}:{node.lineno}: {module}")
    assert not wrong, wrong


def test_the_cli_contract_forbids_every_internal_module() -> None:
    """The import-linter contract names each engine module but the public ones,
    so a new module of memory is internal until it is made public here."""
    contract = next(
        c for c in _contracts() if c["type"] == "forbidden" and c["source_modules"] == ["cli"]
    )
    assert set(contract["forbidden_modules"]) == _engine_modules() - PUBLIC  # type: ignore[call-overload]
    assert contract["allow_indirect_imports"] is True
