"""Shared fixtures: every test gets its own MEM_HOME and a clean environment."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytest_plugins = ["conftest_llm", "conftest_postgres"]

_CLEARED = (
    "MEM_MODEL",
    "MEM_PROFILE",
    "MEM_CONFIG",
    "MEM_EMBEDDER",
    "MEM_DEBUG",
    "MEM_PASSPHRASE",
    "MEM_DB",
    "OPENAI_API_KEY",
    "OPENAI_API_BASE",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
)


@pytest.fixture(autouse=True)
def mem_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "memhome"
    home.mkdir()
    monkeypatch.setenv("MEM_HOME", str(home))
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    yield home


class Cli:
    """Runs `mem` in-process with typer's CliRunner against the test MEM_HOME."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | bytes | None = None, code: int | None = 0) -> Any:
        from cli.main import app

        result = self.runner.invoke(app, list(args), input=input, catch_exceptions=False)
        if code is not None:
            assert result.exit_code == code, (
                f"exit {result.exit_code} != {code}\nstdout: {result.stdout}\n"
                f"stderr: {result.stderr}"
            )
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self(*args, "--json", input=input).stdout)


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture
def store(mem_home: Path) -> Iterator[Any]:
    from memory import MemoryStore

    s = MemoryStore.open(mem_home / "mem.db")
    yield s
    s.close()


def file_bytes(path: Path) -> bytes:
    """The database file plus its WAL, as raw bytes (for 'is it really gone')."""
    data = path.read_bytes()
    wal = Path(str(path) + "-wal")
    if wal.exists():
        data += wal.read_bytes()
    return data


@pytest.fixture
def raw_bytes() -> Any:
    return file_bytes


# ----------------------------------------------------------------- no hidden gaps
# CI installs everything (the offline model, SQLCipher, pypdf) and runs as root, so a
# skipped test there is a gap, not a convenience: .ci/run sets MEM_REQUIRE_ALL_TESTS=1
# and every skip (of a test, or of a whole module at collection) becomes a failure that
# says why it was skipped.
def _require_all() -> bool:
    return os.environ.get("MEM_REQUIRE_ALL_TESTS") == "1"


def _skip_reason(longrepr: Any) -> str:
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def _fail_skip(report: Any) -> None:
    if _require_all() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped ({_skip_reason(report.longrepr)}), but MEM_REQUIRE_ALL_TESTS=1: "
            "install what it needs (pip install -e '.[dev,local]') or fix the skip"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    _fail_skip(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _fail_skip(outcome.get_result())  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the two files llama_cpp opens on /dev/null when it is imported and never
    closes: under pytest's warning filters each would print "Exception ignored ...
    ResourceWarning: unclosed file" at exit, noise that hides a real warning of ours."""
    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        quiet = getattr(utils, name, None)
        if quiet is not None:
            quiet.close()


os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
