"""`mem mcp --db postgresql://…` over the real protocol (issue 15, item 5): every
tool against a server on PostgreSQL, and two MCP servers plus the REPL writing
to one PostgreSQL database at once without losing a write. A real server: the
session's pgserver (tests/conftest_postgres.py); the URL's password never shows."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("mcp")
pytest.importorskip("psycopg")

from test_engine_postgres import url_of  # noqa: E402
from test_mcp import (  # noqa: E402
    assert_nothing_lost,
    call,
    error,
    stdio_session,
    write_at_once,
)

PASSWORD = "hunter2-not-shown"


@pytest.fixture
def url(pg_url: str) -> str:
    """The test database's URL with a password (the local server trusts it, so
    the password is carried but never needed): the server must not print it."""
    return url_of(pg_url).replace("@", f":{PASSWORD}@", 1)


def test_every_tool_works_on_a_postgresql_server(
    cli: Any, url: str, mem_home: Path, tmp_path: Path
) -> None:
    cli("remember", "Answer in French", "--kind", "instruction", "--db", url)
    log = tmp_path / "server.log"

    async def scenario() -> None:
        with log.open("w") as errlog:
            async with stdio_session(mem_home, "--db", url, errlog=errlog) as s:
                fact = (await call(s, "remember", text="My dog is called Rex", tags=["pets"]))[
                    "remembered"
                ]
                assert fact["source"] == "mcp:Cursor" and fact["tags"] == ["pets"]
                hits = (await call(s, "search", query="dog", limit=5))["results"]
                assert hits[0]["id"] == fact["id"]
                shown = await call(s, "show", id=fact["id"])
                assert [e["event"] for e in shown["history"]] == ["add"]
                listed = {m["content"] for m in (await call(s, "list"))["memories"]}
                assert listed >= {"My dog is called Rex", "Answer in French"}
                context = await call(s, "recent_context")
                assert [m["content"] for m in context["instructions"]] == ["Answer in French"]
                preview = await call(s, "forget", query="dog Rex")
                assert [m["id"] for m in preview["would_forget"]] == [fact["id"]]
                gone = await call(s, "forget", ids=[fact["id"]], query="dog Rex")
                assert gone["forgotten"]["forgotten"] == [fact["id"]]
                assert "No memory with id" in await error(s, "show", id=fact["id"])
                seen = json.dumps(await call(s, "search", query="postgresql password"))
                assert PASSWORD not in seen

    anyio.run(scenario)
    text = log.read_text()
    assert PASSWORD not in text and "Traceback" not in text
    assert "Rex" not in cli("list", "--db", url).stdout
    assert not (mem_home / "mem.db").exists()  # nothing went to the default file


def test_a_server_that_cannot_connect_says_so_without_the_password(
    cli: Any, url: str, mem_home: Path
) -> None:
    bad = url + ("&" if "?" in url else "?") + "user=nobody"
    res = cli("mcp", "--db", bad, code=None)
    assert res.exit_code != 0 and PASSWORD not in res.stderr + res.stdout
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    config = json.loads(cli("mcp", "--print-config", "cursor", "--db", url).stdout)
    assert config["mcpServers"]["mem"]["args"][-2:] == ["--db", url]  # the URL kept whole


def test_two_servers_and_the_repl_writing_at_once_on_postgresql_lose_nothing(
    fake_llm: Any, cli: Any, url: str, mem_home: Path, tmp_path: Path
) -> None:
    """3 × 200 writes at once on one PostgreSQL database: two MCP servers and a
    `mem chat` REPL (/remember)."""
    env = dict(
        os.environ,
        **fake_llm.env(),
        PYTHONPATH=str(Path(__file__).resolve().parent.parent),
        MEM_HOME=str(mem_home),
        MEM_DB=url,
        NO_COLOR="1",
        TERM="xterm",
        PROMPT_TOOLKIT_NO_CPR="1",
    )
    logs = write_at_once(mem_home, env, "--db", url, logs=tmp_path)
    assert_nothing_lost({m["content"] for m in cli.json("list", "--limit", "1000", "--db", url)})
    for log in logs:
        assert PASSWORD not in log and "Traceback" not in log
