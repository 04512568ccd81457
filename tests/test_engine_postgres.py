"""The whole engine on a PostgreSQL server, opened by URL (issue 14): the CLI
with ``--db postgresql://…`` / ``MEM_DB``, the Python API (``Memory.open(url)``),
``mem ask`` against the fake model server, a conversation continued from a
second process ("another device"), export → import between servers, and two
member roles that cannot see each other's profile. A real server: the session's
pgserver (tests/conftest_postgres.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pg_server
import psycopg
import pytest

import memory
from memory import Memory

MODEL = "openai/x"
PASSWORD = "hunter2-not-shown"


def url_of(conninfo: str, *, user: str | None = None, scheme: str = "postgresql") -> str:
    """The test database's key=value conninfo as a ``postgresql://`` URL."""
    info = psycopg.conninfo.conninfo_to_dict(conninfo)
    user = user or str(info.get("user") or "postgres")
    name, host, port = info.get("dbname"), str(info.get("host") or ""), info.get("port")
    if host.startswith("/"):
        return f"{scheme}://{user}@/{name}?host={host}" + (f"&port={port}" if port else "")
    return f"{scheme}://{user}@{host}{':' + str(port) if port else ''}/{name}"


@pytest.fixture
def url(pg_url: str) -> str:
    return url_of(pg_url)


def test_cli_verbs_work_on_a_server_as_on_a_file(cli: Any, url: str) -> None:
    added = cli.json("remember", "My sister Ana lives in Lisbon", "--db", url)
    cli("remember", "I prefer green tea in the morning", "--db", url)
    hits = cli.json("search", "where does Ana live", "--db", url)
    assert hits[0]["id"] == added["id"] and "Lisbon" in hits[0]["content"]
    listed = cli.json("list", "--db", url)
    assert {m["content"] for m in listed} >= {"My sister Ana lives in Lisbon"}
    shown = cli.json("show", str(added["id"]), "--db", url)
    assert [e["event"] for e in shown["history"]] == ["add"]
    cli("forget", str(added["id"]), "--yes", "--db", url)
    assert "Lisbon" not in cli("list", "--db", url).stdout
    gone = cli("show", str(added["id"]), "--db", url, code=None)
    assert gone.exit_code != 0 and "Traceback" not in gone.stderr
    stats = cli.json("stats", "--db", url)
    assert stats["path"].startswith("postgresql://") and stats["memories"] == 1


def test_mem_db_and_the_config_name_the_server(
    cli: Any, url: str, mem_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEM_DB", url.replace("postgresql://", "postgres://", 1))
    cli("remember", "The spare key is in the blue pot")
    monkeypatch.delenv("MEM_DB")
    assert "blue pot" not in cli("list").stdout  # the default file is another database
    (mem_home / "config.toml").write_text(f"db = {json.dumps(url)}\n")
    assert "blue pot" in cli("list").stdout
    with Memory.open() as mem:
        assert mem.location.startswith("postgresql://")


def test_file_only_commands_say_so_and_never_show_the_password(cli: Any, pg_url: str) -> None:
    info = psycopg.conninfo.conninfo_to_dict(pg_url)
    secret = url_of(pg_url).replace("@", f":{PASSWORD}@", 1)
    for args in (["encrypt"], ["decrypt"]):
        res = cli(*args, "--db", secret, code=None)
        assert res.exit_code != 0 and "SQLite file" in res.stderr
        assert PASSWORD not in res.stderr + res.stdout and "Traceback" not in res.stderr
    # A wrong password: one line naming the server without it.
    bad = cli("list", "--db", secret + "&sslmode=disable&user=nobody", code=None)
    assert bad.exit_code != 0 and PASSWORD not in bad.stderr + bad.stdout
    assert len(bad.stderr.strip().splitlines()) == 1
    version = cli("--version", "-v", "--db", secret).stdout
    assert PASSWORD not in version and "postgresql://" in version
    assert info.get("dbname")  # the URL named the test's own database


def test_python_api_opens_a_url(url: str) -> None:
    with Memory.open(url, profile="alice") as mem:
        fact = mem.remember("Alice's bike is a red Brompton")
        assert mem.search("what bike does alice ride")[0].id == fact.id
    with Memory.open(url, profile="alice") as again:  # a second connection, same data
        assert again.get(fact.id).content == "Alice's bike is a red Brompton"
    with Memory.open(url, profile="bob") as bob:
        assert bob.search("bike") == []


def test_export_import_round_trip_between_servers(
    cli: Any, url: str, pg_url: str, tmp_path: Path
) -> None:
    import pg_server

    cli("remember", "I was born in Porto", "--db", url)
    cli("remember", "Always answer in English", "--kind", "instruction", "--db", url)
    out = tmp_path / "export.jsonl"
    cli("export", str(out), "--db", url)
    other = url_of(pg_server.fresh_database())
    cli("import", str(out), "--db", other)
    again = tmp_path / "again.jsonl"
    cli("export", str(again), "--db", other)
    first = sorted((m["kind"], m["content"]) for m in cli.json("list", "--db", url))
    second = sorted((m["kind"], m["content"]) for m in cli.json("list", "--db", other))
    assert first == second and len(first) == 2
    assert cli.json("import", str(out), "--db", other)["memories_skipped"] == 2


def run_mem(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )


def test_ask_then_continue_on_a_second_device(
    fake_llm: Any, cli: Any, url: str, tmp_path: Path
) -> None:
    first = cli.json("ask", "--model", MODEL, "My name is Ana and I live in Lyon", "--db", url)
    assert first["reply"] == "OK"
    fact = next(
        m for m in cli.json("list", "--kind", "fact", "--db", url) if "Lyon" in m["content"]
    )
    fake_llm.clear()
    # Another machine: its own MEM_HOME, the same server, another process.
    home = tmp_path / "laptop"
    home.mkdir()
    env = dict(os.environ, **fake_llm.env(), MEM_HOME=str(home), MEM_DB=url)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(memory.__file__).parent.parent), *sys.path])
    second = run_mem(["ask", "--model", MODEL, "-c", "--json", "Where do I live?"], env)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["conversation"] == first["conversation"]
    request = [r for r in fake_llm.chat_requests() if r.get("stream")][0]
    sent = [m["content"] for m in request["messages"]]
    assert "The user lives in Lyon." in sent[0]  # the memory, found on the server
    assert sent[1:] == ["My name is Ana and I live in Lyon", "OK", "Where do I live?"]
    # Forgetting the fact with its source takes the message along (lineage).
    report = cli.json("forget", str(fact["id"]), "--with-source", "--yes", "--db", url)
    assert report["messages"]
    assert "Lyon" not in cli("export", "--db", url).stdout


def test_two_member_roles_see_only_their_own_profile(cli: Any, pg_url: str, url: str) -> None:
    cli("admin", "init", "--url", pg_url, "--embedder", "minilm-static-256")
    for profile in ("alice", "bob"):
        cli("admin", "add-member", profile, "--url", pg_url)
    alice = url_of(pg_url, user="alice")
    bob = url_of(pg_url, user="bob")
    cli("remember", "Alice keeps a llama named Quokka", "--db", alice, "--profile", "alice")
    cli("remember", "Bob likes chess", "--db", bob, "--profile", "bob")
    assert "Quokka" not in cli("list", "--db", bob, "--profile", "bob").stdout
    hits = cli.json("search", "llama named Quokka", "--db", bob, "--profile", "bob")
    assert [h["content"] for h in hits] == ["Bob likes chess"]
    refused = cli("list", "--db", bob, "--profile", "alice", code=None)
    assert refused.exit_code != 0 and "Traceback" not in refused.stderr
    assert "role 'bob'" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert "Quokka" in cli("list", "--db", alice, "--profile", "alice").stdout
    assert "chess" not in cli("list", "--db", alice, "--profile", "alice").stdout


def test_a_members_forget_names_the_owners_scrub(cli: Any, pg_url: str) -> None:
    """A member role may not VACUUM: its forget deletes, says in one line that
    the owner's `mem admin scrub` finishes it, and the owner's scrub does."""
    cli("admin", "init", "--url", pg_url, "--embedder", "minilm-static-256")
    cli("admin", "add-member", "bob", "--url", pg_url)
    bob = url_of(pg_url, user="bob")
    added = cli.json("remember", "Bob's locker code is 4711", "--db", bob, "--profile", "bob")
    out = cli("forget", str(added["id"]), "--yes", "--db", bob, "--profile", "bob", code=None)
    assert out.exit_code != 0 and "Traceback" not in out.stderr
    assert "Forgot 1 memory" in out.stdout
    line = out.stderr.strip()
    assert len(line.splitlines()) == 1 and "`mem admin scrub`" in line and "'bob'" in line
    assert "4711" not in cli("list", "--db", bob, "--profile", "bob").stdout
    assert "Vacuumed" in cli("admin", "scrub", "--url", pg_url).stdout
    with psycopg.connect(pg_url, autocommit=True) as owner:
        dead = owner.execute(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'memories'"
        ).fetchone()
    # VACUUM FULL writes the table anew (its counters may still show the dead
    # row): what matters is that no byte of the text is left in any file.
    assert dead in ((0,), (1,))
    assert b"locker code is 4711" not in pg_server.probe(pg_url)


def test_the_repl_chats_on_a_server(fake_llm: Any, url: str, mem_home: Path, cli: Any) -> None:
    pexpect = pytest.importorskip("pexpect")
    from repl_harness import spawn

    child = spawn(mem_home, {**fake_llm.env(), "MEM_DB": url}, "chat", "--model", MODEL)
    child.sendline("/remember My dog is called Rex")
    child.expect_exact("+ remembered: My dog is called Rex")
    child.expect_exact("you>")
    fake_llm.enqueue("Your dog is Rex.")
    child.sendline("I live in Lyon. What is my dog called?")
    child.expect_exact("Your dog is Rex.")
    child.expect_exact("you>")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    sent = [r for r in fake_llm.chat_requests() if r.get("stream")][-1]["messages"][0]
    assert "My dog is called Rex" in sent["content"]
    assert not (mem_home / "mem.db").exists()  # nothing went to the default file
    histories = list((mem_home / "servers").glob("*/history"))
    assert len(histories) == 1 and "What is my dog called?" in histories[0].read_text()
    facts = [m["content"] for m in cli.json("list", "--kind", "fact", "--db", url)]
    assert "The user lives in Lyon." in facts  # formed in the background, on the server


def test_mem_eval_makes_its_temporary_database_on_the_server(cli: Any, pg_url: str) -> None:
    folder = Path(__file__).parent / "data" / "eval_small"
    server = url_of(pg_url)
    report = cli.json("eval", str(folder), "--db", server)
    local = cli.json("eval", str(folder))
    assert report["overall"]["recall"] == local["overall"]["recall"]
    with psycopg.connect(pg_url) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'mem_eval%'")
        assert left.fetchone() == (0,)  # dropped after
