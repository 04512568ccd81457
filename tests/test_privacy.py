"""Trust: profiles never see each other, forgetting leaves no bytes, retention
deletes old data, and secrets never become memories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from memory import MemoryStore
from memory.errors import SecretRefusedError
from memory.lifecycle.forgetting import forget
from memory.models.embed import pack
from memory.privacy.secrets_gate import scan

SECRET = "Quetzalcoatl"


def _seed_two_profiles(cli: Any, tmp_path: Path) -> None:
    cli("remember", f"Alice's secret word is {SECRET}", "--profile", "alice")
    msgs = tmp_path / "alice.jsonl"
    msgs.write_text(
        json.dumps(
            {
                "conversation": "alice-chat",
                "role": "user",
                "speaker": "Alice",
                "content": f"I whispered {SECRET} to the cat",
                "id": "m1",
                "timestamp": "2024-01-01T10:00:00",
            }
        )
        + "\n"
    )
    cli("import", str(msgs), "--profile", "alice")
    cli("remember", "Bob likes trains", "--profile", "bob")
    cli("remember", "The office opens at nine", "--profile", "system")


def test_profile_isolation_across_read_commands(cli: Any, tmp_path: Path) -> None:
    _seed_two_profiles(cli, tmp_path)
    alice = cli.json("list", "--profile", "alice")
    secret_id = next(m["id"] for m in alice if SECRET in m["content"])
    bob = ["--profile", "bob"]
    outputs = [
        cli("search", SECRET, *bob).stdout + cli("search", SECRET, *bob).stderr,
        json.dumps(cli.json("search", SECRET, *bob)),
        "".join(
            json.dumps(json.loads(line)["results"])
            for line in cli(
                "search", "-", *bob, input=f"{SECRET}\nwhispered cat\n"
            ).stdout.splitlines()
        ),
        json.dumps(cli.json("list", *bob)),
        json.dumps(cli.json("list", "--kind", "message", *bob)),
        json.dumps(cli.json("stats", *bob)),
        json.dumps(cli.json("conversations", *bob)),
        cli("export", *bob).stdout,
        cli("ask", "--show-prompt", f"what is {SECRET}?", *bob).stdout.replace(
            f"what is {SECRET}?", ""
        ),
    ]
    for out in outputs:
        assert SECRET not in out
    assert cli("show", str(secret_id), *bob, code=3).stderr == (
        f"Error: No memory with id {secret_id}: see `mem list` for ids.\n"
    )
    assert cli("forget", str(secret_id), *bob, code=3).exit_code == 3
    assert cli("search", "x", "--conversation", "alice-chat", *bob, code=3).exit_code == 3
    assert cli("ask", "-c", "--show-prompt", "hi", *bob).exit_code == 0
    # Bob's own and the shared system namespace are visible to Bob.
    contents = [m["content"] for m in cli.json("list", *bob)]
    assert contents == ["The office opens at nine", "Bob likes trains"]
    # Alice still sees her own memory.
    assert cli.json("search", SECRET, "--profile", "alice")[0]["id"] == secret_id


def test_profile_from_env(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEM_PROFILE", "work")
    cli("remember", "Standup at ten")
    monkeypatch.delenv("MEM_PROFILE")
    assert cli.json("list") == []
    assert len(cli.json("list", "--profile", "work")) == 1


def test_invalid_profile_name(cli: Any) -> None:
    res = cli("list", "--profile", "../etc", code=2)
    assert res.stderr == (
        "Error: Invalid profile name '../etc': use up to 64 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit.\n"
    )


def test_forgotten_text_and_vectors_leave_the_file(store: MemoryStore, raw_bytes: Any) -> None:
    text = f"My passport number hint is {SECRET}"
    mem = store.remember(text)
    vector = pack(store.embedder.embed([text])[0])
    bits = store.conn.execute("SELECT vec_quantize_binary(vec_f32(?))", [vector]).fetchone()[0]
    store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    blob = raw_bytes(store.path)
    assert SECRET.encode() in blob and vector in blob and bits in blob
    forget(store, [mem.id])
    blob = raw_bytes(store.path)
    assert SECRET.encode() not in blob
    assert SECRET.lower().encode() not in blob  # FTS5 stores lower-cased tokens
    assert vector not in blob
    assert bits not in blob


def test_audit_of_updates_is_scrubbed_on_forget(store: MemoryStore, raw_bytes: Any) -> None:
    mem = store.remember(f"Codename {SECRET}")
    store.update_memory(mem.id, f"Codename {SECRET} for the project")
    forget(store, [mem.id])
    assert SECRET.encode() not in raw_bytes(store.path)
    assert all(e.before is None and e.after is None for e in store.history(mem.id))


# ---------------------------------------------------------------- retention
def _old_rows(cli: Any, tmp_path: Path) -> None:
    rows = [
        {
            "conversation": "old",
            "role": "user",
            "content": "An ancient message about kites",
            "timestamp": "2001-01-01T00:00:00",
            "id": "1",
        },
        {
            "type": "memory",
            "content": "An ancient fact about kites",
            "created_at": "2001-01-01T00:00:00",
        },
        {
            "type": "memory",
            "kind": "instruction",
            "content": "Old instruction about kites",
            "created_at": "2001-01-01T00:00:00",
        },
    ]
    path = tmp_path / "old.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("import", str(path))
    cli("remember", "A fresh fact about kites")


def test_prune_dry_run_then_delete(
    cli: Any, mem_home: Path, tmp_path: Path, raw_bytes: Any
) -> None:
    _old_rows(cli, tmp_path)
    (mem_home / "config.toml").write_text(
        '[retention]\nmessage = "365d"\nfact = "30d"\ninstruction = "never"\n'
    )
    out = cli("prune").stdout
    assert out == "Would delete 1 message, 1 fact: run `mem prune --yes` to delete them.\n"
    assert len(cli.json("list", "--all")) == 3
    assert cli.json("prune", "--yes") == {"dry_run": False, "counts": {"message": 1, "fact": 1}}
    left = [m["content"] for m in cli.json("list")]
    assert left == ["A fresh fact about kites", "Old instruction about kites"]
    assert cli.json("list", "--kind", "message") == []
    assert b"ancient" not in raw_bytes(mem_home / "mem.db")
    assert cli("prune").stdout == "Nothing has expired.\n"


def test_retention_runs_when_a_chat_starts(
    fake_llm: Any, cli: Any, mem_home: Path, tmp_path: Path
) -> None:
    _old_rows(cli, tmp_path)
    (mem_home / "config.toml").write_text('[retention]\nmessage = "30d"\n')
    res = cli("ask", "--model", "openai/x", "hello")
    assert "note: retention deleted 1 message" in res.stderr
    assert [m["content"] for m in cli.json("list", "--kind", "message")] == ["OK", "hello"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            '[retention]\nwidgets = "1d"\n',
            "Unknown kind 'widgets' in [retention]: use one of fact, instruction, message, "
            "episode, document, summary, example.",
        ),
        (
            '[retention]\nfact = "soon"\n',
            "Invalid retention 'soon' for fact: use a duration such as 365d, or never.",
        ),
    ],
)
def test_bad_retention_config(cli: Any, mem_home: Path, config: str, message: str) -> None:
    (mem_home / "config.toml").write_text(config)
    assert cli("prune", code=2).stderr == f"Error: {message}\n"


# -------------------------------------------------------------- secret gate
@pytest.mark.parametrize(
    ("text", "found", "stored"),
    [
        ("My card is 4111 1111 1111 1111", ["card number"], "My card is [redacted card number]"),
        ("my password is hunter22!", ["password"], "my password is [redacted password]"),
        ("use key sk-proj-abcdefghijklmnop1234", ["API key"], "use key [redacted API key]"),
        ("IBAN GB82 WEST 1234 5698 7654 32", ["bank account"], "IBAN [redacted bank account]"),
        ("AWS AKIAIOSFODNN7EXAMPLE", ["API key"], "AWS [redacted API key]"),
        ("I have 4111111111111112 reasons", [], "I have 4111111111111112 reasons"),
        ("My PIN is 4821", ["password"], "My PIN is [redacted password]"),
        ("I live in Lyon", [], "I live in Lyon"),
    ],
)
def test_scan(text: str, found: list[str], stored: str) -> None:
    result = scan(text)
    assert result.findings == found and result.text == stored


def test_remember_redacts_with_receipt(cli: Any, raw_bytes: Any, mem_home: Path) -> None:
    res = cli("remember", "My card is 4111 1111 1111 1111")
    assert res.stdout == "Remembered #1 (fact): My card is [redacted card number]\n"
    assert res.stderr == (
        "note: redacted card number before storing; secrets never become memories\n"
    )
    assert b"4111 1111 1111 1111" not in raw_bytes(mem_home / "mem.db")


def test_refuse_policy(cli: Any, mem_home: Path) -> None:
    (mem_home / "config.toml").write_text('secrets = "refuse"\n')
    res = cli("remember", "my password is hunter22!", code=2)
    assert res.stderr == (
        "Error: Not stored: the text looks like it holds a password; remove it, or set "
        'secrets = "redact" (or "allow") in the config file.\n'
    )
    assert cli.json("list") == []


def test_allow_policy(cli: Any, mem_home: Path) -> None:
    (mem_home / "config.toml").write_text('secrets = "allow"\n')
    assert "hunter22!" in cli.json("remember", "my password is hunter22!")["content"]


def test_bad_policy(cli: Any, mem_home: Path) -> None:
    (mem_home / "config.toml").write_text('secrets = "shred"\n')
    assert cli("list", code=2).stderr == (  # the config file's check names the file
        f"Error: In {mem_home / 'config.toml'}: secrets must be one of redact, refuse, allow, "
        'not "shred".\n'
    )


def test_implicit_extraction_is_gated(fake_llm: Any, cli: Any) -> None:
    res = cli("ask", "--model", "openai/x", "Remember that my PIN is 4821")
    assert "(redacted: password)" in res.stderr
    facts = [m["content"] for m in cli.json("list", "--kind", "fact")]
    assert facts and all("4821" not in f for f in facts)
    # The raw message log keeps what the user typed (retention governs it).
    assert any("4821" in m["content"] for m in cli.json("list", "--kind", "message"))


def test_refused_secret_in_engine(tmp_path: Path) -> None:
    with (
        MemoryStore.open(tmp_path / "m.db", secrets="refuse") as s,
        pytest.raises(SecretRefusedError),
    ):
        s.remember("token is ghp_abcdefghijklmnopqrstuvwxyz0123456789")
