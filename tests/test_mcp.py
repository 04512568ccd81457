"""`mem mcp` over the real protocol: the SDK's own client spawns the server
(stdio) or talks to it over streamable HTTP. No mocks: every call goes through
the MCP handshake, the transport, the tools and the engine, into SQLite."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("mcp")

# Loaded now, at collection: loaded lazily by the first stdio_client, pytest's
# rewrite of it (anyio is a plugin) hit CPython 3.11.7's "AST constructor recursion
# depth mismatch" once earlier tests had run.
import anyio._core._subprocesses  # noqa: E402, F401
import httpx2  # noqa: E402  (the SDK's HTTP client)
from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.types import Implementation  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOOLS = {"remember", "search", "forget", "list", "show", "recent_context", "add"}
READING = {"search", "list", "show", "recent_context"}
SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD"


def _env(home: Path, **extra: str) -> dict[str, str]:
    """What the spawned server needs: the SDK passes only a safe subset else."""
    return {"PYTHONPATH": str(ROOT), "MEM_HOME": str(home), "NO_COLOR": "1", **extra}


@asynccontextmanager
async def stdio_session(
    home: Path, *args: str, client: str = "Cursor", errlog: Any = None
) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "cli.main", "mcp", *args], env=_env(home)
    )
    log = errlog if errlog is not None else sys.stderr
    async with stdio_client(params, errlog=log) as (read, write):
        info = Implementation(name=client, version="1.0")
        async with ClientSession(read, write, client_info=info) as session:
            await session.initialize()
            yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    text = result.content[0].text  # type: ignore[union-attr]
    data: dict[str, Any] = json.loads(text)
    return data


async def error(session: ClientSession, tool: str, **arguments: Any) -> str:
    """The tool error's text: one line, never a traceback."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, result.content
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert "\n" not in text and "Traceback" not in text, text
    return text


def test_stdio_every_tool_resource_and_prompt(cli: Any, mem_home: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "tapir.md").write_text("# Tapirs\n\nThe lowland tapir swims well.\n")
    (tmp_path / "private.md").write_text("# Private\n\nNot shared.\n")
    log = tmp_path / "server.log"

    async def scenario() -> None:
        with log.open("w") as errlog:
            async with stdio_session(mem_home, "--share", str(shared), errlog=errlog) as s:
                assert {t.name for t in (await s.list_tools()).tools} == TOOLS
                fact = (await call(s, "remember", text="My dog is called Rex", tags=["pets"]))[
                    "remembered"
                ]
                assert fact["source"] == "mcp:Cursor" and fact["tags"] == ["pets"]
                rule = await call(s, "remember", text="Answer in French", kind="instruction")
                secret = await call(s, "remember", text=f"my openai key is {SECRET}")
                assert SECRET not in json.dumps(secret)  # the secret gate applies

                hits = (await call(s, "search", query="dog", limit=5))["results"]
                assert hits[0]["id"] == fact["id"] and hits[0]["source"] == "mcp:Cursor"
                only = (await call(s, "search", query="dog", kind="instruction"))["results"]
                assert {h["kind"] for h in only} == {"instruction"}
                listed = (await call(s, "list", limit=10))["memories"]
                assert {m["id"] for m in listed} >= {fact["id"], rule["remembered"]["id"]}

                shown = await call(s, "show", id=fact["id"])
                assert shown["content"] == "My dog is called Rex"
                assert [e["event"] for e in shown["history"]] == ["add"]

                context = await call(s, "recent_context")
                assert [m["content"] for m in context["instructions"]] == ["Answer in French"]
                assert "My dog is called Rex" in [m["content"] for m in context["facts"]]

                added = await call(s, "add", paths=[str(shared / "tapir.md")])
                assert added["chunks_added"] >= 1
                assert "lowland tapir" in json.dumps(await call(s, "search", query="tapir"))
                refused = await error(s, "add", paths=[str(tmp_path / "private.md")])
                assert "not under a shared folder" in refused

                preview = await call(s, "forget", query="dog Rex")
                assert preview["dry_run"] and [m["id"] for m in preview["would_forget"]] == [
                    fact["id"]
                ]
                assert (await call(s, "show", id=fact["id"]))["id"] == fact["id"]  # still there
                gone = await call(s, "forget", ids=[fact["id"]], query="dog Rex")
                assert not gone["dry_run"] and gone["forgotten"]["forgotten"] == [fact["id"]]
                assert "No memory with id" in await error(s, "show", id=fact["id"])

                resources = {str(r.uri) for r in (await s.list_resources()).resources}
                assert resources == {"mem://instructions", "mem://facts"}
                text = (await s.read_resource("mem://instructions")).contents[0]
                assert "Answer in French" in text.text  # type: ignore[union-attr]
                facts = (await s.read_resource("mem://facts")).contents[0]
                assert "Rex" not in facts.text  # type: ignore[union-attr]

                prompts = (await s.list_prompts()).prompts
                assert [p.name for p in prompts] == ["use_memory"]
                prompt = await s.get_prompt("use_memory")
                assert "recent_context" in prompt.messages[0].content.text  # type: ignore[union-attr]

                # errors: one line each, from the engine or the SDK's validation
                assert "less than or equal to 100" in await error(
                    s, "search", query="x", limit=1000
                )
                assert "Nothing to remember" in await error(s, "remember", text="   ")
                assert "Nothing to forget" in await error(s, "forget")
                await error(s, "search", query="x", since="not a date")

    anyio.run(scenario)
    assert "Traceback" not in log.read_text()
    shown = cli("show", "2").stdout  # the instruction, written by "Cursor"
    assert f"source: from Cursor, {time.strftime('%Y')}" in shown


def test_read_only_server_refuses_writes(cli: Any, mem_home: Path) -> None:
    cli("remember", "The cat is grey")

    async def scenario() -> None:
        async with stdio_session(mem_home, "--read-only") as s:
            assert {t.name for t in (await s.list_tools()).tools} == READING
            for tool, args in (("remember", {"text": "x"}), ("forget", {"ids": [1]})):
                message = await error(s, tool, **args)
                assert message.startswith(f"{tool} is refused: this mem server is read-only")
            assert (await call(s, "search", query="cat"))["results"][0]["id"] == 1
            facts = (await s.read_resource("mem://facts")).contents[0]
            assert "The cat is grey" in facts.text  # type: ignore[union-attr]
            guide = (await s.get_prompt("use_memory")).messages[0].content
            assert "remember" not in guide.text  # type: ignore[union-attr]

    anyio.run(scenario)
    assert [m["content"] for m in cli.json("list")] == ["The cat is grey"]


def test_a_server_for_bob_never_returns_alices_memories(cli: Any, mem_home: Path) -> None:
    cli("remember", "Alice's locker code is 4471", "--profile", "alice")
    cli("remember", "Alice prefers answers in haiku", "--kind", "instruction", "--profile", "alice")
    alice = [m["id"] for m in cli.json("list", "--profile", "alice")]
    cli("remember", "Bob plays the oboe", "--profile", "bob")
    missing = 999

    async def scenario() -> None:
        async with stdio_session(mem_home, "--profile", "bob") as s:
            seen = json.dumps(
                [
                    await call(s, "search", query="Alice locker code haiku 4471"),
                    await call(s, "list"),
                    await call(s, "recent_context"),
                    await call(s, "forget", query="locker code"),
                ]
            )
            for r in ("mem://facts", "mem://instructions"):
                seen += (await s.read_resource(r)).contents[0].text  # type: ignore[union-attr]
            assert "Alice" not in seen and "4471" not in seen and "oboe" in seen
            for memory_id in alice:  # reachable by id? no: exactly a missing id's answer
                for tool, args in (("show", {"id": memory_id}), ("forget", {"ids": [memory_id]})):
                    mine = await error(s, tool, **args)
                    absent = await error(s, tool, **{k: _swap(v, missing) for k, v in args.items()})
                    assert mine == absent.replace(str(missing), str(memory_id))

    anyio.run(scenario)
    assert sorted(m["id"] for m in cli.json("list", "--profile", "alice")) == sorted(alice)


def _swap(value: Any, missing: int) -> Any:
    return [missing] if isinstance(value, list) else missing


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_http(home: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, **_env(home))
    with log.open("wb") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "mcp", "--http", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the HTTP server did not start: " + log.read_text())


PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
ACCEPT = {"accept": "application/json, text/event-stream"}


def test_http_needs_the_bearer_token(mem_home: Path, tmp_path: Path) -> None:
    port, log = _free_port(), tmp_path / "http.log"
    proc = _start_http(mem_home, port, log)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        token_file = mem_home / "mcp-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        assert log.read_text().count(token) == 1  # shown once, when generated

        async def scenario() -> None:
            async with httpx2.AsyncClient() as raw:
                for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "x"}):
                    res = await raw.post(url, json=PING, headers=ACCEPT | headers)
                    assert res.status_code == 401 and token not in res.text
                    assert res.headers["www-authenticate"].startswith("Bearer")
            auth = {"authorization": f"Bearer {token}"}
            async with httpx2.AsyncClient(headers=auth) as http:
                async with streamable_http_client(url, http_client=http) as (read, write):
                    info = Implementation(name="Zed", version="1")
                    async with ClientSession(read, write, client_info=info) as s:
                        await s.initialize()
                        assert {t.name for t in (await s.list_tools()).tools} == TOOLS
                        saved = await call(s, "remember", text="I drink green tea")
                        assert saved["remembered"]["source"] == "mcp:Zed"
                        # a client gone mid-call: the server carries on
                        with anyio.move_on_after(0.005):
                            await s.call_tool("search", {"query": "tea"})
            async with httpx2.AsyncClient(headers=auth) as http:
                async with streamable_http_client(url, http_client=http) as (read, write):
                    async with ClientSession(read, write) as s:
                        await s.initialize()
                        hits = (await call(s, "search", query="green tea"))["results"]
                        assert hits[0]["content"] == "I drink green tea"

        anyio.run(scenario)
        rotated = subprocess.run(
            [sys.executable, "-m", "cli.main", "mcp", "--rotate-token"],
            env=dict(os.environ, **_env(mem_home)),
            capture_output=True,
            text=True,
            check=True,
        )
        new = rotated.stdout.strip()
        assert new and new != token and token_file.read_text().strip() == new
        assert token_file.stat().st_mode & 0o777 == 0o600
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(30)
    assert "Traceback" not in log.read_text()


def test_print_config_names_the_absolute_command(cli: Any, tmp_path: Path) -> None:
    desktop = json.loads(cli("mcp", "--print-config", "claude-desktop", "--profile", "bob").stdout)
    server = desktop["mcpServers"]["mem"]
    assert Path(server["command"]).is_absolute()
    assert server["args"][-3:] == ["mcp", "--profile", "bob"]
    code = cli("mcp", "--print-config", "claude-code").stdout
    assert code.startswith("claude mcp add mem -- /") and code.rstrip().endswith(" mcp")
    assert json.loads(cli("mcp", "--print-config", "cursor").stdout)["mcpServers"]["mem"]
    res = cli("mcp", "--print-config", "emacs", code=2)
    assert res.stderr.startswith("Error: Unknown client 'emacs'") and res.stderr.count("\n") == 1


def test_bad_options_are_one_line_errors(cli: Any, tmp_path: Path) -> None:
    for args, message in (
        (["--http", "localhost:port"], "Invalid --http 'localhost:port'"),
        (["--http", "70000"], "Invalid --http '70000'"),
        (["--share", str(tmp_path / "nope")], "--share"),
    ):
        res = cli("mcp", *args, code=2)
        assert res.stderr.startswith(f"Error: {message}") and res.stderr.count("\n") == 1


def test_mem_help_imports_neither_the_sdk_nor_litellm() -> None:
    code = "import sys, cli.main; print(sorted({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        text=True,
        capture_output=True,
        check=True,
    ).stdout
    loaded = set(json.loads(out.replace("'", '"')))
    assert not loaded & {"mcp", "litellm", "uvicorn", "starlette"}


N_WRITES = 200


def write_at_once(home: Path, env: dict[str, str], *server_args: str, logs: Path) -> list[str]:
    """N_WRITES each from two MCP servers (``alpha``, ``beta``; their stderr in
    ``logs``/NAME.log) and a `mem chat` REPL typing /remember, all at once; the
    REPL's failures are raised here. Returns the text of the two servers' logs."""
    import threading

    import pexpect

    repl = pexpect.spawn(
        sys.executable,
        ["-m", "cli.main", "chat", "--model", "openai/x"],
        env=env,
        encoding="utf-8",
        timeout=120,
    )
    repl.expect_exact("you>")
    failures: list[BaseException] = []

    def type_them() -> None:
        try:
            for i in range(N_WRITES):
                repl.sendline(f"/remember repl note {i}")
                repl.expect_exact(f"+ remembered: repl note {i}")
                repl.expect_exact("you>")
            repl.sendeof()
            repl.expect(pexpect.EOF)
        except BaseException as err:  # reported below, in the test's thread
            failures.append(AssertionError(f"{type(err).__name__}: {repl.before!r}"))

    async def server_writes(name: str) -> None:
        with (logs / f"{name}.log").open("w") as errlog:
            async with stdio_session(home, *server_args, client=name, errlog=errlog) as s:
                for i in range(N_WRITES):
                    await call(s, "remember", text=f"{name} note {i}")

    async def both() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(server_writes, "alpha")
            group.start_soon(server_writes, "beta")

    typist = threading.Thread(target=type_them)
    typist.start()
    anyio.run(both)
    typist.join(300)
    assert not failures, failures
    return [(logs / f"{name}.log").read_text() for name in ("alpha", "beta")]


def assert_nothing_lost(contents: set[str]) -> None:
    for who in ("repl", "alpha", "beta"):
        assert {f"{who} note {i}" for i in range(N_WRITES)} <= contents, who
    assert len(contents) == 3 * N_WRITES


def test_two_servers_and_the_repl_writing_at_once_lose_nothing(
    fake_llm: Any, cli: Any, mem_home: Path, tmp_path: Path
) -> None:
    """3 × 200 writes at once: two MCP servers and a `mem chat` REPL (/remember)."""
    env = dict(
        os.environ, **fake_llm.env(), **_env(mem_home), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1"
    )
    write_at_once(mem_home, env, logs=tmp_path)
    assert_nothing_lost({m["content"] for m in cli.json("list", "--limit", "1000")})


def test_a_client_name_is_cleaned_before_it_becomes_a_source() -> None:
    from memory.mcp_server.verbs import client_source

    assert client_source("Cursor") == "mcp:Cursor"
    assert client_source("Evil\n\x1b[31mName\u202e") == "mcp:Evil [31mName"
    assert client_source("  ") == client_source(None) == "mcp:unnamed client"
    assert len(client_source("x" * 1000)) == len("mcp:") + 64


def test_idf_survives_a_write_between_its_two_reads() -> None:
    """Found by the concurrent-writers test: the REPL died with "math domain
    error" when another process committed rows between search's read of the
    scope's row count and of a term's hits (hits > rows)."""
    from memory.storage.sqlite.keyword_stats import IDF_FLOOR, _idf

    assert _idf(rows=10, hits=12) == IDF_FLOOR
    assert _idf(rows=10, hits=1) > IDF_FLOOR
