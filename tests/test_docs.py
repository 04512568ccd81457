"""Docs stay true: every command has help, README lists exactly the commands,
and CI runs exactly the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from cli.main import app

ROOT = Path(__file__).resolve().parent.parent


def _commands() -> dict[str, object]:
    group = typer.main.get_group(app)
    return dict(group.commands)


def test_every_command_has_help() -> None:
    for name, cmd in _commands().items():
        assert getattr(cmd, "help", None), f"`mem {name}` has no help text"


def test_readme_lists_every_command() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `mem (\w+)`", table, re.MULTILINE))
    listed |= set(re.findall(r"^\| `mem` / `mem (\w+)`", table, re.MULTILINE))
    assert listed == set(_commands())


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.DOTALL)
    install, test_command = blocks[0].strip(), blocks[1].strip()
    assert "pip install" in install and "mem" in install
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci


def test_help_lists_every_command_once_in_the_help_order() -> None:
    """The commands are built lazily (cli/lazy.py): `mem --help` must still list
    each one, once, the memory verbs first (cli/main.py HELP_ORDER)."""
    from typer.testing import CliRunner

    from cli.main import HELP_ORDER

    out = CliRunner().invoke(app, ["--help"]).output
    listed = re.findall(r"^  (\w+)\s", out.split("Commands:", 1)[1], re.MULTILINE)
    assert sorted(listed) == sorted(_commands())
    ordered = [n for n in listed if n in HELP_ORDER]
    assert ordered == [n for n in HELP_ORDER if n in listed]


def test_a_command_is_found_by_name_and_an_unknown_one_is_refused() -> None:
    from typer.testing import CliRunner

    runner = CliRunner()
    assert runner.invoke(app, ["search", "--help"]).exit_code == 0
    result = runner.invoke(app, ["serch"])
    assert result.exit_code == 2
    assert "No such command" in result.output
