"""Options on the command line: every command, both positions, every number.

The commands are enumerated from the typer app, so a new command fails
``test_every_command_has_a_recipe`` until it is covered here too.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pexpect
import pytest
import typer
from repl_harness import spawn

from cli.app import GLOBAL_OPTIONS, Bounded
from cli.main import app

DATA = Path(__file__).parent / "data" / "eval_small"
GROUP = typer.main.get_command(app)
assert isinstance(GROUP, click.Group)
COMMANDS = sorted(GROUP.commands)
HUGE = "99999999999999999999"


@dataclass
class World:
    """A second database with the data in profile alice; the default one untouched."""

    home: Path
    db: Path
    tmp: Path
    ids: dict[str, int] = field(default_factory=dict)

    def store(self) -> Any:
        from memory import MemoryStore

        return MemoryStore.open(self.db, profile="alice")

    def contents(self) -> list[str]:
        with self.store() as s:
            return [m.content for m in s.list_memories()]


@pytest.fixture
def world(cli: Any, mem_home: Path, tmp_path: Path) -> World:
    db = tmp_path / "other.db"
    w = World(mem_home, db, tmp_path)
    where = ("--db", str(db), "--profile", "alice")
    w.ids["zebra"] = cli.json("remember", "the zebra crossing is blue", *where)["id"]
    cli("import", str(DATA / "messages.jsonl"), *where)
    doc = tmp_path / "docs" / "guide.md"
    doc.parent.mkdir()
    doc.write_text("# Guide\n\nThe okapi manual says hello.\n")
    cli("add", str(doc), *where)
    (mem_home / "config.toml").write_text('[retention]\nmessage = "30d"\n')
    assert not (mem_home / "mem.db").exists()
    return w


def _json(res: Any) -> Any:
    return json.loads(res.stdout)


Check = Callable[[World, Any], None]


def _remember(w: World, res: Any) -> None:
    assert _json(res)["profile"] == "alice"
    assert "a quokka smiles" in w.contents()


def _example(w: World, res: Any) -> None:
    assert _json(res)["output"] == "softly"
    assert "a tapir hums => softly" in w.contents()


def _search(w: World, res: Any) -> None:
    hits = _json(res)
    assert isinstance(hits, list) and any("zebra" in h["content"] for h in hits)


def _forget(w: World, res: Any) -> None:
    assert _json(res)["forgotten"] == [w.ids["zebra"]]
    assert not any("zebra" in c for c in w.contents())


def _list(w: World, res: Any) -> None:
    rows = _json(res)
    assert isinstance(rows, list) and [r["content"] for r in rows] == ["the zebra crossing is blue"]


def _show(w: World, res: Any) -> None:
    data = _json(res)
    assert data["id"] == w.ids["zebra"] and data["profile"] == "alice"


def _stats(w: World, res: Any) -> None:
    data = _json(res)
    assert Path(data["path"]) == w.db and data["profile"] == "alice"
    assert data["messages"] > 0


def _export(w: World, res: Any) -> None:
    assert "the zebra crossing is blue" in res.stdout


def _import(w: World, res: Any) -> None:
    assert _json(res)["messages_added"] == 1
    with w.store() as s:
        assert any(c["id"] == "c-new" for c in s.conversations(100))


def _reindex(w: World, res: Any) -> None:
    assert "hash-256" in res.stdout
    with w.store() as s:
        assert s.embedder.name == "hash-256"


def _conversations(w: World, res: Any) -> None:
    rows = _json(res)
    assert isinstance(rows, list) and {r["id"] for r in rows} >= {"conv-a"}


def _prune(w: World, res: Any) -> None:
    data = _json(res)
    assert data["dry_run"] and data["counts"].get("message", 0) > 0


def _tend(w: World, res: Any) -> None:
    data = _json(res)
    assert data["applied"] is False and isinstance(data["actions"], list)


def _undo(w: World, res: Any) -> None:
    assert _json(res)["undone"]  # alice's last change: the remembered zebra
    assert "the zebra crossing is blue" not in w.contents()


def _ask(w: World, res: Any) -> None:
    assert "the zebra crossing is blue" in res.stdout


def _add(w: World, res: Any) -> None:
    assert _json(res)["profile"] == "alice"
    with w.store() as s:
        from memory.knowledge.documents import documents

        assert any(d.path.endswith("new.md") and d.profile == "alice" for d in documents(s))


def _docs(w: World, res: Any) -> None:
    docs = _json(res)
    assert isinstance(docs, list) and [d["profile"] for d in docs] == ["alice"]


def _eval(w: World, res: Any) -> None:
    report = _json(res)
    assert Path(report["database"]) == w.db
    assert report["overall"]["recall"]["10"] > 0  # alice holds the conversations


@dataclass
class Recipe:
    args: Callable[[World], list[str]]
    check: Check | None  # None: run through a terminal (chat)
    json: bool = True  # --json is part of args
    profile: bool = True  # the command takes --profile


def _episodes(w: World, res: Any) -> None:
    rows = _json(res)  # --build: the imported conversations' sessions, in profile alice
    assert rows and {r["kind"] for r in rows} == {"episode"}
    assert all(r["profile"] == "alice" and r["metadata"]["participants"] for r in rows)


def _new_file(w: World) -> str:
    path = w.tmp / "new.jsonl"
    path.write_text(
        json.dumps({"conversation": "c-new", "role": "user", "content": "hello", "id": "n1"}) + "\n"
    )
    return str(path)


def _new_doc(w: World) -> str:
    path = w.tmp / "docs" / "new.md"
    path.write_text("# New\n\nA tapir paragraph.\n")
    return str(path)


RECIPES: dict[str, Recipe] = {
    "remember": Recipe(lambda w: ["a quokka smiles", "--json"], _remember),
    "search": Recipe(lambda w: ["zebra", "--json"], _search),
    "forget": Recipe(lambda w: [str(w.ids["zebra"]), "--yes", "--json"], _forget),
    "list": Recipe(lambda w: ["--json"], _list),
    "show": Recipe(lambda w: [str(w.ids["zebra"]), "--json"], _show),
    "example": Recipe(lambda w: ["add", "a tapir hums", "softly", "--json"], _example),
    "stats": Recipe(lambda w: ["--json"], _stats),
    "export": Recipe(lambda w: [], _export, json=False),
    "import": Recipe(lambda w: [_new_file(w), "--json"], _import),
    "reindex": Recipe(lambda w: ["--embedder", "hash-256"], _reindex, json=False),
    "conversations": Recipe(lambda w: ["--json"], _conversations),
    "episodes": Recipe(lambda w: ["--build", "--json"], _episodes),
    "prune": Recipe(lambda w: ["--json"], _prune),
    "tend": Recipe(lambda w: ["--json"], _tend),
    "undo": Recipe(lambda w: ["--json"], _undo),
    "ask": Recipe(
        lambda w: ["--show-prompt", "--json", "what colour is the zebra crossing?"], _ask
    ),
    "chat": Recipe(lambda w: [], None, json=False),
    "add": Recipe(lambda w: [_new_doc(w), "--json"], _add),
    "docs": Recipe(lambda w: ["--json"], _docs),
    "eval": Recipe(lambda w: [str(DATA), "--live", "--json"], _eval),
    "mcp": Recipe(lambda w: [], None, json=False),  # a server: tests/test_mcp.py
    "encrypt": Recipe(lambda w: [], None, json=False, profile=False),
    "copy": Recipe(lambda w: [], None, profile=False),  # SRC and DST, no --db: test_copy.py
    "decrypt": Recipe(lambda w: [], None, json=False, profile=False),
    # a PostgreSQL server's setup (tests/test_storage_postgres.py), not the local file
    "admin": Recipe(lambda w: [], None, json=False, profile=False),
}


def test_every_command_has_a_recipe() -> None:
    assert sorted(RECIPES) == COMMANDS


def test_json_where_the_command_lists() -> None:
    """Each command that prints rows or a report takes --json (and its recipe uses it)."""
    for name, recipe in RECIPES.items():
        has_json = any(p.name == "as_json" for p in GROUP.commands[name].params)
        assert has_json == recipe.json, name


def _argv(w: World, name: str, position: str, *, profile: bool = True) -> list[str]:
    where = ["--db", str(w.db)] + (["--profile", "alice"] if profile else [])
    args = RECIPES[name].args(w)
    return [*where, name, *args] if position == "before" else [name, *args, *where]


CLI_RECIPES = [n for n in COMMANDS if RECIPES.get(n) and RECIPES[n].check is not None]


@pytest.mark.parametrize("position", ["before", "after"])
@pytest.mark.parametrize("name", CLI_RECIPES)
def test_db_and_profile_take_effect(cli: Any, world: World, name: str, position: str) -> None:
    res = cli(*_argv(world, name, position))
    check = RECIPES[name].check
    assert check is not None
    check(world, res)
    assert not (world.home / "mem.db").exists(), "the default database was used"


@pytest.mark.parametrize("position", ["before", "after"])
def test_chat_takes_db_and_profile(fake_llm: Any, cli: Any, world: World, position: str) -> None:
    where = ["--db", str(world.db), "--profile", "alice"]
    chat = ["chat", "--model", "openai/x"]
    args = [*where, *chat] if position == "before" else [*chat, *where]
    child = spawn(world.home, fake_llm.env(), *args)
    child.sendline("/remember the wombat sleeps")
    child.expect_exact("+ remembered: the wombat sleeps")
    child.expect_exact("you>")
    child.sendeof()
    child.expect(pexpect.EOF)
    assert "the wombat sleeps" in world.contents()
    assert not (world.home / "mem.db").exists()


@pytest.mark.parametrize("position", ["before", "after"])
def test_encrypt_and_decrypt_take_db(
    cli: Any, world: World, position: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sqlcipher3")
    from memory.storage.sqlite.db import SQLITE_HEADER

    monkeypatch.setenv("MEM_PASSPHRASE", "correct horse battery")
    cli(*_argv(world, "encrypt", position, profile=False))
    assert world.db.read_bytes()[:16] != SQLITE_HEADER
    cli(*_argv(world, "decrypt", position, profile=False))
    assert world.db.read_bytes()[:16] == SQLITE_HEADER
    assert not (world.home / "mem.db").exists()


@pytest.mark.parametrize("name", ["encrypt", "decrypt"])
def test_profile_before_a_command_without_it_is_refused(cli: Any, name: str) -> None:
    res = cli("--profile", "alice", name, code=2)
    assert res.stderr == f"Error: --profile does not apply to `mem {name}`: drop it.\n"


def _refusals() -> list[tuple[str, str]]:
    root = {p.name: p for p in GROUP.params}
    cases = []
    for name in COMMANDS:
        own = {p.name for p in GROUP.commands[name].params}
        cases += [(name, opt) for opt in GLOBAL_OPTIONS if opt not in own and opt in root]
    return cases


ROOT_VALUES = {
    "model": "openai/x",
    "memory": "window",
    "window": "3",
    "budget": "1000",
    "conversation": "c1",
    "db": "x.db",
    "profile": "alice",
}


@pytest.mark.parametrize(("name", "option"), _refusals())
def test_global_option_a_command_lacks_is_refused(
    cli: Any, mem_home: Path, name: str, option: str
) -> None:
    param = next(p for p in GROUP.params if p.name == option)
    flag = max(param.opts, key=len)
    value = [ROOT_VALUES[option]] if option in ROOT_VALUES else []
    # refused before the command parses its own arguments (none are given here)
    res = cli(flag, *value, name, code=None)
    assert res.exit_code == 2, res.stdout
    assert res.stderr.startswith(f"Error: {flag} does not apply to `mem {name}`")
    assert res.stderr.count("\n") == 1
    assert not (mem_home / "mem.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--db", "a.db", "stats", "--db", "b.db"],
            "--db is given twice ('a.db' before `stats`, 'b.db' after it): keep one.",
        ),
        (
            ["--profile", "bob", "list", "--profile", "alice"],
            "--profile is given twice ('bob' before `list`, 'alice' after it): keep one.",
        ),
        (
            ["--window", "3", "ask", "--window", "4", "hi"],
            "--window is given twice (3 before `ask`, 4 after it): keep one.",
        ),
    ],
)
def test_conflicting_values_are_refused(
    cli: Any, mem_home: Path, args: list[str], message: str
) -> None:
    res = cli(*args, code=2)
    assert res.stderr == f"Error: {message}\n"
    assert not (mem_home / "mem.db").exists()


def test_same_value_in_both_positions_is_fine(cli: Any, tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    assert cli.json("--db", db, "stats", "--db", db)["path"] == db


def test_the_issue_reproduction(cli: Any, mem_home: Path, tmp_path: Path) -> None:
    """mem --db other.db forget 1 --yes used to delete #1 from the default database."""
    other = str(tmp_path / "other.db")
    cli("remember", "kept in the default database")
    cli("remember", "in the other one", "--db", other)
    cli("--db", other, "forget", "1", "--yes")
    assert [m["content"] for m in cli.json("list")] == ["kept in the default database"]
    assert cli.json("list", "--db", other) == []
    cli("--profile", "alice", "remember", "X")
    assert [m["content"] for m in cli.json("list", "--profile", "alice")] == ["X"]
    assert [m["content"] for m in cli.json("--profile", "alice", "list")] == ["X"]
    assert all(m["content"] != "X" for m in cli.json("list"))


def test_verbose_and_continue_before_ask(fake_llm: Any, cli: Any) -> None:
    fake_llm.enqueue("First.")
    fake_llm.enqueue('{"facts": []}')
    cli("ask", "--model", "openai/x", "hello")
    fake_llm.enqueue("Second.")
    fake_llm.enqueue('{"facts": []}')
    res = cli("-v", "-c", "--model", "openai/x", "ask", "again")
    assert res.stdout == "Second.\n"
    assert "conversation " in res.stderr  # -v before `ask` reports the memory work
    convs = cli.json("conversations")
    assert len(convs) == 1 and convs[0]["messages"] == 4  # -c continued it


# ------------------------------------------------------------------ numbers
def _numeric_params() -> list[tuple[str, str]]:
    out = [("", p.name or "") for p in GROUP.params if _is_number(p)]
    for name in COMMANDS:
        out += [(name, p.name or "") for p in GROUP.commands[name].params if _is_number(p)]
    return out


def _is_number(param: click.Parameter) -> bool:
    return (
        isinstance(param.type, Bounded)
        or param.type in (click.INT, click.FLOAT)
        or (isinstance(param.type, click.types._NumberParamTypeBase))
    )


def test_every_number_option_is_bounded() -> None:
    params = _numeric_params()
    assert len(params) >= 14  # the root's two, and each command's
    for name, pname in params:
        cmd = GROUP.commands[name] if name else GROUP
        param = next(p for p in cmd.params if p.name == pname)
        assert isinstance(param.type, Bounded), (name, pname)


def _invocation(name: str, pname: str, value: str) -> list[str]:
    cmd = GROUP.commands[name] if name else GROUP
    param = next(p for p in cmd.params if p.name == pname)
    before = [name] if name else []
    if isinstance(param, click.Argument):  # `--`: "-9…" is a value, not an option
        return [*before, "--", value] if value.startswith("-") else [*before, value]
    # required arguments get a harmless placeholder; the option is checked first
    fill = [
        "1" for p in cmd.params if isinstance(p, click.Argument) and p.required and p.name != pname
    ]
    return [*before, max(param.opts, key=len), value, *fill]


@pytest.mark.parametrize("value", [HUGE, "-" + HUGE, "abc", "nan", "1e999"])
@pytest.mark.parametrize(("name", "pname"), _numeric_params())
def test_huge_and_bad_numbers_are_one_line_errors(
    cli: Any, mem_home: Path, name: str, pname: str, value: str
) -> None:
    res = cli(*_invocation(name, pname, value), code=2)
    assert res.stdout == ""
    assert res.stderr.startswith("Error: Invalid ") and res.stderr.count("\n") == 1, res.stderr
    assert "unexpected" not in res.stderr
    assert not (mem_home / "mem.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["list", "-n", HUGE],
            f"Invalid --limit {HUGE}: use a whole number of at most {2**63 - 1}.",
        ),
        (["show", HUGE], f"Invalid ID {HUGE}: use a whole number of at most {2**63 - 1}."),
        (
            ["forget", "1", HUGE, "--yes"],
            f"Invalid ID {HUGE}: use a whole number of at most {2**63 - 1}.",
        ),
        (
            ["search", "x", "--limit", HUGE],
            f"Invalid --limit {HUGE}: use a whole number of at most 10000.",
        ),
        (["conversations", "-n", "0"], "Invalid --limit 0: use a whole number of at least 1."),
        (
            ["remember", "x", "--importance", "nan"],
            "Invalid importance nan: use a number from 0 to 1.",
        ),
        (["ask", "--window", HUGE, "hi"], f"Invalid --window {HUGE}: use at most 10000 turns."),
        (["--budget", "100", "ask", "hi"], "Invalid --budget 100: use at least 256 tokens."),
        (
            ["list", "-n", "abc"],
            "Invalid --limit 'abc': use a whole number from 1 to 9223372036854775807.",
        ),
    ],
)
def test_number_messages(cli: Any, args: list[str], message: str) -> None:
    assert cli(*args, code=2).stderr == f"Error: {message}\n"


def test_largest_id_is_not_found_not_a_crash(cli: Any) -> None:
    res = cli("show", str(2**63 - 1), code=3)
    assert res.stderr.startswith("Error: No memory with id 9223372036854775807")
    assert cli("list", "-n", str(2**63 - 1), "--json").stdout.strip() == "[]"
    assert cli("conversations", "-n", str(2**63 - 1), "--json").stdout.strip() == "[]"


# -------------------------------------------------------------- search -
def test_search_stdin_line_is_bounded(cli: Any) -> None:
    from cli.commands import MAX_QUERY_BYTES

    long = b"word " * (MAX_QUERY_BYTES // 5 + 10) + b"\n"
    res = cli("search", "-", input=b"dog\n" + long, code=2)
    assert res.stderr == (
        "Error: A query line on stdin is longer than 100 KB: send one short query a line.\n"
    )
    assert json.loads(res.stdout.splitlines()[0])["query"] == "dog"  # earlier lines answered
    exact = b"a" * (MAX_QUERY_BYTES - 1) + b"\n"  # the limit itself, newline included
    assert json.loads(cli("search", "-", input=exact).stdout)["results"] == []
    assert cli("search", "-", input=b"x" * (MAX_QUERY_BYTES + 1), code=2).stderr.startswith(
        "Error: A query line on stdin is longer than 100 KB"
    )


# ------------------------------------------------------------ forget --with-source
def test_forget_with_source_deletes_the_message(cli: Any, tmp_path: Path) -> None:
    lines = [
        {"conversation": "c9", "role": "user", "content": "my quokka is Ned", "id": "m1"},
        {"conversation": "c9", "role": "user", "content": "unrelated", "id": "m2"},
        {"type": "memory", "content": "the quokka is Ned", "source_message": "c9\u001fm1"},
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    cli("import", str(path))
    [mem] = cli.json("list")
    assert cli.json("show", str(mem["id"]))["source_message"]["content"] == "my quokka is Ned"
    res = cli("forget", str(mem["id"]), "--with-source", "--yes")
    # the memory, and the message's own search entry with the message
    assert res.stdout.endswith(" memories and 1 source message.\n")
    exported = cli("export").stdout
    assert "quokka" not in exported and "unrelated" in exported


# ----------------------------------------------------------------- --version
def test_version(cli: Any) -> None:
    from memory import __version__

    assert cli("--version").stdout == f"mem {__version__}\n"


def test_version_verbose(cli: Any, mem_home: Path) -> None:
    from memory.storage.sqlite.schema import schema_version

    out = cli("--version", "-v").stdout
    assert f"schema     {schema_version()}\n" in out
    assert "embedder   minilm-static-256 (default)" in out
    for extra in ("encrypt", "local", "pdf"):
        assert f"\n{extra:<10} " in out
    assert "(not created yet)" in out and not (mem_home / "mem.db").exists()
    cli("remember", "x", "--db", str(mem_home / "mem.db"))
    assert "(built with minilm-static-256)" in cli("--verbose", "--version").stdout


def test_version_imports_nothing_heavy(mem_home: Path) -> None:
    """A fresh interpreter: `mem --version -v` must not import litellm or numpy."""
    import subprocess

    code = (
        "import sys, runpy; sys.argv = ['mem', '--version', '-v']\n"
        "try:\n    runpy.run_module('cli.main', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('litellm', 'numpy', 'openai', 'llama_cpp') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[-1] == "HEAVY []"


# --------------------------------------------------------------- completion
def test_completion_options_are_on(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without this typer guesses the shell from the parent processes (a flag, no
    # value), which under some runners finds none: the test names bash itself.
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    help_text = cli("--help").stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text
    script = cli("--show-completion", "bash").stdout
    assert "_MEM_COMPLETE=complete_bash" in script and "complete -o default" in script


def _complete(line: str, mem_home: Path) -> list[str]:
    """What bash completion offers for ``line`` (typer's completion protocol)."""
    import subprocess

    env = dict(
        os.environ,
        MEM_HOME=str(mem_home),
        _MEM_COMPLETE="complete_bash",
        COMP_WORDS=line,
        COMP_CWORD=str(len(line.split()) - (0 if line.endswith(" ") else 1)),
    )
    code = "import sys; sys.argv[0] = 'mem'; from cli.main import main; main()"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    ).stdout
    return out.split()


def test_completion_offers_profiles_ids_and_conversations(
    cli: Any, mem_home: Path, tmp_path: Path
) -> None:
    assert _complete("mem list --profile ", mem_home) == []
    assert not (mem_home / "mem.db").exists()  # completion never creates a database
    cli("remember", "a", "--profile", "alice")
    cli("remember", "b", "--profile", "bob")
    cli("import", str(DATA / "messages.jsonl"))
    assert _complete("mem list --profile ", mem_home) == ["alice", "bob", "default"]
    assert _complete("mem --profile al", mem_home) == ["alice"]
    assert _complete("mem show ", mem_home) == []  # default has only messages
    assert _complete("mem --profile bob show ", mem_home) == ["2"]
    assert _complete("mem show --profile alice ", mem_home) == ["1"]
    assert "conv-a" in _complete("mem search x --conversation ", mem_home)
    other = tmp_path / "nothing.db"
    assert _complete(f"mem list --db {other} --profile ", mem_home) == []
    assert not other.exists()
