"""`mem mcp` as a client spawns it starts without typer (cli/mcp_stdio.py), and
every other line, and every error, still goes the way of every command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli.mcp_stdio import _mapped, parse, server_args
from memory.errors import InvalidInputError, UsageError

pytest.importorskip("mcp")

ROOT = Path(__file__).resolve().parent.parent
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}


def _spawn(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MEM_HOME=str(home), NO_COLOR="1")
    env.pop("MEM_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cli.main", *args],
        input=stdin,
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
    )


def _imported(stderr: str) -> set[str]:
    """Modules by full name: a package's own line (``rich``) is there only when it
    was loaded; a refused submodule (``rich.console``, see
    memory/mcp_server/transport.py) leaves a line of its own without it."""
    lines = (line for line in stderr.splitlines() if line.startswith("import time:"))
    return {line.rsplit("|", 1)[1].strip() for line in lines}


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("import time:")]


def test_the_lines_print_config_writes_are_served_without_typer(tmp_path: Path) -> None:
    share = tmp_path / "notes"
    share.mkdir()
    args = server_args(str(tmp_path / "m.db"), "bob", True, [str(share)])
    assert parse(["mcp", *args]) == {
        "db": str(tmp_path / "m.db"),
        "profile": "bob",
        "read_only": True,
        "share": [str(share)],
    }
    plain = _spawn(tmp_path, "mcp", *args, stdin=json.dumps(INITIALIZE) + "\n")
    assert plain.returncode == 0, _errors(plain.stderr)
    assert json.loads(plain.stdout.splitlines()[0])["result"]["serverInfo"]["name"] == "mem"
    assert "mcp" in _imported(plain.stderr)
    assert not _imported(plain.stderr) & {"typer", "rich", "litellm"}
    # An option before `mcp` is typer's to parse: the same server answers.
    typed = _spawn(
        tmp_path, "--db", str(tmp_path / "m.db"), "mcp", stdin=json.dumps(INITIALIZE) + "\n"
    )
    assert typed.returncode == 0, _errors(typed.stderr)
    assert "typer" in _imported(typed.stderr)
    assert json.loads(typed.stdout.splitlines()[0])["result"]["serverInfo"]["name"] == "mem"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["search", "x"],
        ["--db", "x.db", "mcp"],
        ["mcp", "--help"],
        ["mcp", "-h"],
        ["mcp", "--http", "8765"],
        ["mcp", "--print-config", "cursor"],
        ["mcp", "--rotate-token"],
        ["mcp", "--db"],
        ["mcp", "--db", ""],
        ["mcp", "--db=", "x"],
        ["mcp", "--db", "a.db", "--db", "b.db"],
        ["mcp", "--profile", "--read-only"],
        ["mcp", "--read-only", "--read-only"],
        ["mcp", "--read-only=1"],
        ["mcp", "--dbx", "a.db"],
        ["mcp", "stray"],
    ],
)
def test_every_other_line_is_left_to_typer(argv: list[str]) -> None:
    assert parse(argv) is None


def test_a_bad_line_gets_the_one_line_error_typer_gives(tmp_path: Path, cli: Any) -> None:
    """Served from cli/mcp_stdio.py, a line whose database will not open or
    whose folder is missing is handed to typer, which says why in one line."""
    folder = tmp_path / "missing"
    for args, code in (
        (["--share", str(folder)], 2),
        (["--db", "mysql://host/db"], 2),
        (["--db", "/proc/nowhere/m.db"], None),
    ):
        spawned = _spawn(tmp_path, "mcp", *args)
        in_process = cli("mcp", *args, code=code)
        assert spawned.returncode == in_process.exit_code != 0
        assert _errors(spawned.stderr) == in_process.stderr.splitlines()
        assert len(_errors(spawned.stderr)) == 1 and spawned.stderr.count("Error: ") == 1


def test_a_failure_while_serving_goes_through_the_clis_error_mapping(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _mapped(InvalidInputError("Bad input: send less."), None) == InvalidInputError.exit_code
    assert capsys.readouterr().err == "Error: Bad input: send less.\n"
    assert _mapped(UsageError("Use --db."), None) == 2
    assert _mapped(KeyboardInterrupt(), None) == 130
    assert capsys.readouterr().err.splitlines() == ["Error: Use --db.", "Error: Interrupted."]
    assert _mapped(RuntimeError("boom"), None) == 70
    assert capsys.readouterr().err.startswith("Error: unexpected RuntimeError: boom")
