"""``mem copy`` / ``memory.copy_store`` (issue 14): a whole store, every
profile, into another — SQLite to SQLite, SQLite to PostgreSQL and back —
with the export/import identity, resumable after a kill, and its refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_engine_postgres import url_of
from test_transfer import _export, _rich_store, normalised

import memory
from memory import MemoryStore

ROOT = Path(__file__).resolve().parent.parent


def _store(path: Path, folder: Path) -> None:
    """Two profiles, one rich (documents, summaries, supersedes), one plain."""
    folder.mkdir(exist_ok=True)
    with MemoryStore.open(path) as a:
        _rich_store(a, folder)
    with MemoryStore.open(path, profile="bob") as b:
        conv = b.new_conversation("Tea")
        b.log_message(conv, "user", "I like green tea", speaker="Bob")
        b.remember("Bob likes green tea")


def _exports(location: str | Path, names: list[str]) -> dict[str, list[dict[str, Any]]]:
    result = {}
    for name in names:
        with MemoryStore.open(location, profile=name) as store:
            result[name] = normalised(_export(store))
    return result


def test_sqlite_to_sqlite_keeps_every_profile(tmp_path: Path) -> None:
    _store(tmp_path / "a.db", tmp_path / "docs")
    steps: list[tuple[int, int]] = []
    report = memory.copy_store(
        tmp_path / "a.db", tmp_path / "b.db", progress=lambda d, t: steps.append((d, t))
    )
    assert report.profiles == ["bob", "default"] and report.rows > 0
    assert steps[-1] == (report.rows, report.rows)
    names = ["bob", "default", "system"]
    assert _exports(tmp_path / "b.db", names) == _exports(tmp_path / "a.db", names)
    again = memory.copy_store(tmp_path / "a.db", tmp_path / "b.db")
    assert again.messages_added == again.memories_added == 0
    assert _exports(tmp_path / "b.db", names) == _exports(tmp_path / "a.db", names)


def test_sqlite_to_postgres_and_back(tmp_path: Path, pg_url: str) -> None:
    url = url_of(pg_url)
    _store(tmp_path / "a.db", tmp_path / "docs")
    there = memory.copy_store(f"sqlite://{tmp_path / 'a.db'}", url)
    assert there.target.startswith("postgresql://")
    back = memory.copy_store(url, tmp_path / "c.db")
    assert back.profiles == there.profiles
    names = ["bob", "default"]
    source = _exports(tmp_path / "a.db", names)
    assert _exports(url, names) == source
    assert _exports(tmp_path / "c.db", names) == source


KILLER = """
import os, signal, sys
import memory

def progress(done, total):
    if done >= int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)

memory.copy_store(sys.argv[1], sys.argv[2], progress=progress)
"""


def test_a_killed_copy_finishes_when_run_again(tmp_path: Path) -> None:
    _store(tmp_path / "a.db", tmp_path / "docs")
    with MemoryStore.open(tmp_path / "a.db", profile="zoe") as z:
        conv = z.new_conversation("Many")
        for i in range(250):
            z.log_message(conv, "user", f"note number {i}")
    rows = memory.copy_store(tmp_path / "a.db", tmp_path / "probe.db").rows
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLER,
            str(tmp_path / "a.db"),
            str(tmp_path / "b.db"),
            str(rows - 50),
        ],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "MEM_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert killed.returncode == -9
    names = ["bob", "default", "zoe"]
    partial = _exports(tmp_path / "b.db", names)
    assert partial["zoe"] == []  # the profile being written when killed: nothing of it
    report = memory.copy_store(tmp_path / "a.db", tmp_path / "b.db")
    assert report.messages_skipped > 0  # what the killed run wrote is not written twice
    assert _exports(tmp_path / "b.db", names) == _exports(tmp_path / "a.db", names)


def test_same_store_is_refused(tmp_path: Path, cli: Any) -> None:
    _store(tmp_path / "a.db", tmp_path / "docs")
    with pytest.raises(memory.UsageError, match="same"):
        memory.copy_store(tmp_path / "a.db", f"sqlite://{tmp_path / 'a.db'}")
    result = cli("copy", str(tmp_path / "a.db"), str(tmp_path / "a.db"), code=None)
    assert result.exit_code != 0 and "same" in result.stderr


def test_same_server_is_refused(tmp_path: Path, pg_url: str) -> None:
    url = url_of(pg_url)
    with MemoryStore.open(url) as store:
        store.remember("on the server")
    with pytest.raises(memory.UsageError, match="same"):
        memory.copy_store(url, url)


def test_bad_urls_are_one_line_errors_without_the_password(tmp_path: Path, cli: Any) -> None:
    _store(tmp_path / "a.db", tmp_path / "docs")
    for target in ("mysql://u:sekret@h/db", "postgresql://u:sekret@127.0.0.1:1/db"):
        result = cli("copy", str(tmp_path / "a.db"), target, code=None)
        assert result.exit_code != 0
        assert "sekret" not in result.stderr + result.stdout
        assert result.stderr.startswith("Error:") and "Traceback" not in result.stderr
    missing = cli("copy", str(tmp_path / "none.db"), str(tmp_path / "b.db"), code=None)
    assert missing.exit_code != 0 and "No database" in missing.stderr


def test_cli_copy_reports_json(tmp_path: Path, cli: Any) -> None:
    _store(tmp_path / "a.db", tmp_path / "docs")
    report = cli.json("copy", str(tmp_path / "a.db"), str(tmp_path / "b.db"))
    assert report["profiles"] == ["bob", "default"] and report["memories_added"] > 0
    assert json.dumps(report)
