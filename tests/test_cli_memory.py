"""The memory commands through typer's CliRunner, on a real temporary database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

MESSAGES = [
    {
        "conversation": "c1",
        "role": "user",
        "speaker": "Ana",
        "content": "I adopted a puppy",
        "timestamp": "2023-05-08T13:56:00",
        "id": "D1:1",
    },
    {
        "conversation": "c1",
        "role": "assistant",
        "speaker": "Bo",
        "content": "Which breed is it?",
        "timestamp": "2023-05-08T13:56:00",
        "id": "D1:2",
    },
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_remember_search_forget_roundtrip(cli: Any, mem_home: Path, raw_bytes: Any) -> None:
    out = cli("remember", "My dog is called Rex")
    assert out.stdout == "Remembered #1 (fact): My dog is called Rex\n"
    hits = cli.json("search", "dog name")
    assert hits[0]["content"] == "My dog is called Rex"
    assert {
        "id",
        "kind",
        "content",
        "score",
        "created_at",
        "conversation",
        "message_id",
        "external_id",
    } <= set(hits[0])
    assert cli("forget", "1").stdout == "Forgot 1 memory.\n"
    assert cli.json("search", "dog name") == []
    assert b"Rex" not in raw_bytes(mem_home / "mem.db")


def test_remember_options_and_list_show(cli: Any) -> None:
    mem = cli.json(
        "remember",
        "Answer in bullet points",
        "--kind",
        "instruction",
        "--importance",
        "0.9",
        "--tag",
        "style",
    )
    assert mem["kind"] == "instruction" and mem["importance"] == 0.9
    assert mem["metadata"] == {"tags": ["style"]}
    listed = cli.json("list", "--kind", "instruction")
    assert [m["id"] for m in listed] == [mem["id"]]
    shown = cli.json("show", str(mem["id"]))
    assert [e["event"] for e in shown["history"]] == ["add"]
    text = cli("show", str(mem["id"])).stdout
    assert "Answer in bullet points" in text and "history:" in text
    table = cli("list").stdout
    assert "Answer in bullet points" in table


def test_stats(cli: Any) -> None:
    cli("remember", "I like tea")
    data = cli.json("stats")
    assert data["kinds"] == {"fact": {"active": 1, "inactive": 0}}
    assert data["embedder"] == "minilm-static-256" and data["size_bytes"] > 0
    assert "embedder   minilm-static-256 (256 dims)" in cli("stats").stdout


def test_import_then_search_stdin(cli: Any, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "m.jsonl", MESSAGES)
    out = cli("import", str(src))
    assert out.stdout == "Imported 2 messages (0 already there) and 0 memories (0 already there).\n"
    assert cli.json("import", str(src))["messages_skipped"] == 2
    res = cli(
        "search",
        "-",
        "--json",
        "--limit",
        "5",
        "--conversation",
        "c1",
        input="Who adopted a puppy?\n\nWhich breed\n",
    )
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [line["query"] for line in lines] == ["Who adopted a puppy?", "Which breed"]
    assert lines[0]["results"][0]["external_id"] == "D1:1"
    assert lines[1]["results"][0]["external_id"] == "D1:2"
    assert cli.json("conversations")[0]["id"] == "c1"


def test_export_import_files(cli: Any, tmp_path: Path) -> None:
    cli("remember", "The user likes jazz")
    target = tmp_path / "out.jsonl"
    res = cli("export", str(target))
    assert res.stderr == "Exported 1 memories, 0 messages in 0 conversations.\n"
    line = json.loads(target.read_text())
    assert line["type"] == "memory" and line["content"] == "The user likes jazz"
    res = cli("import", str(target), "--db", str(tmp_path / "other.db"), "--json")
    assert json.loads(res.stdout)["memories_added"] == 1


def test_forget_by_query_asks_unless_yes(cli: Any) -> None:
    cli("remember", "The user's bank is Acme Bank")
    cli("remember", "The user likes cats")
    res = cli("forget", "--query", "bank", input="n\n", code=2)
    assert res.stderr.endswith("Error: Not forgetting without confirmation: add --yes.\n")
    assert len(cli.json("list")) == 2
    res = cli("forget", "--query", "bank", "--yes")
    assert "#1 fact: The user's bank is Acme Bank" in res.stderr
    assert res.stdout == "Forgot 1 memory.\n"
    assert [m["content"] for m in cli.json("list")] == ["The user likes cats"]


def test_forget_older_than(cli: Any, tmp_path: Path) -> None:
    old = [{"type": "memory", "content": "An old fact", "created_at": "2001-01-01T00:00:00"}]
    cli("import", str(write_jsonl(tmp_path / "old.jsonl", old)))
    cli("remember", "A new fact")
    res = cli("forget", "--older-than", "90d", "--yes", "--json")
    assert len(json.loads(res.stdout)["forgotten"]) == 1
    assert [m["content"] for m in cli.json("list")] == ["A new fact"]


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["show", "42"], 3, "No memory with id 42: see `mem list` for ids."),
        (["forget", "42"], 3, "No memory with id 42: see `mem list` for ids."),
        (["forget"], 2, "Say what to forget: memory ids, --query WORDS or --older-than 90d."),
        (
            ["forget", "--older-than", "soon", "--yes"],
            2,
            "Invalid duration 'soon': use a number and a unit, such as 90d, 2w, 6m or 1y.",
        ),
        (
            ["remember", "x", "--importance", "2"],
            2,
            "Invalid importance 2.0: use a number from 0 to 1.",
        ),
        (
            ["remember", "x", "--kind", "document"],
            2,
            "Unknown kind 'document' for remember: use fact or instruction.",
        ),
        (
            ["search", "x", "--kind", "nope"],
            2,
            "Unknown kind 'nope': use one of fact, instruction, message, episode, document, "
            "summary, example.",
        ),
        (
            ["search", "x", "--since", "someday"],
            2,
            "Invalid date 'someday': use YYYY-MM-DD, an ISO datetime, 'yesterday' or a duration "
            "such as 7d.",
        ),
        (
            ["search", "x", "--conversation", "zz"],
            3,
            "No conversation 'zz' in profile 'default': see `mem conversations` for ids.",
        ),
        (["search", "x", "--limit", "0"], 2, "Invalid limit 0: use a whole number of at least 1."),
        (
            ["import", "/nonexistent/file.jsonl"],
            2,
            "No such file: /nonexistent/file.jsonl; check the path.",
        ),
    ],
)
def test_error_messages(cli: Any, args: list[str], code: int, message: str) -> None:
    res = cli(*args, code=code)
    assert res.stderr == f"Error: {message}\n"
    assert res.stdout == ""


def test_malformed_import_line_reports_line_number(cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(MESSAGES[0]) + "\n{oops\n")
    res = cli("import", str(bad), code=2)
    assert res.stderr == (
        f"Error: {bad}:2: not valid JSON (Expecting property name enclosed in double quotes); "
        "fix or remove that line (nothing was imported).\n"
    )
    assert cli.json("conversations") == []


def test_corrupt_database_file(cli: Any, mem_home: Path) -> None:
    db = mem_home / "mem.db"
    db.write_bytes(b"not a database at all" * 100)
    res = cli("list", code=4)
    assert res.stderr == (
        f"Error: {db} is not a mem database (not SQLite, or encrypted): set MEM_PASSPHRASE if "
        "it is encrypted, or move it away or pass --db with another path.\n"
    )
    assert db.read_bytes() == b"not a database at all" * 100


def test_embedder_mismatch_and_reindex(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cli("remember", "The user likes chess")
    monkeypatch.setenv("MEM_EMBEDDER", "hash-128")
    res = cli("search", "chess", code=4)
    assert res.stderr == (
        "Error: This database's vectors were built with minilm-static-256, not hash-128: run "
        "`mem reindex --embedder hash-128` to rebuild them, or drop the embedder setting.\n"
    )
    assert cli("reindex").stdout == "Reindexed 1 memories with hash-128.\n"
    assert cli.json("search", "chess")[0]["content"] == "The user likes chess"


def test_search_stdin_invalid_utf8(cli: Any) -> None:
    res = cli("search", "-", input=b"\xff\xfe\n", code=2)
    assert res.stderr == "Error: stdin is not valid UTF-8: convert the queries to UTF-8.\n"


def test_broken_config_file(cli: Any, mem_home: Path) -> None:
    (mem_home / "config.toml").write_text("model = \n")
    res = cli("list", code=2)
    assert res.stderr.startswith(f"Error: Cannot read {mem_home / 'config.toml'}: ")
    assert res.stderr.endswith("; fix the TOML or delete the file.\n")


def test_debug_env_shows_traceback(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from memory.errors import NotFoundError

    monkeypatch.setenv("MEM_DEBUG", "1")
    with pytest.raises(NotFoundError):
        cli("show", "7", code=None)


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "dog"],
        ["forget", "--query", "zzz", "--yes"],
        ["list"],
        ["--help"],
        ["stats"],
        ["remember", "x"],
    ],
)
def test_memory_commands_never_import_litellm(argv: list[str], mem_home: Path, cli: Any) -> None:
    cli("stats")  # an existing database: creating one runs migrations (sqlite_utils)
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from cli.main import app\n"
        f"r = CliRunner().invoke(app, {argv!r})\n"
        "assert r.exit_code == 0, (r.exit_code, r.output)\n"
        "print('litellm' in sys.modules, 'sqlite_utils' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # Neither the provider library nor the migration library on a warm path.
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("args", [[], ["chat"]])
def test_chat_without_a_terminal_points_to_ask(cli: Any, args: list[str]) -> None:
    res = cli(*args, input="hello\n", code=2)
    assert res.stderr == (
        "Error: The chat needs a terminal: for piped input use `echo … | mem ask`.\n"
    )
