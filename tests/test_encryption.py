"""Encryption at rest with SQLCipher: no plaintext in the file, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlcipher3")

SECRET = "Xylophonist"


def test_encrypt_search_forget_decrypt(
    cli: Any, mem_home: Path, raw_bytes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = mem_home / "mem.db"
    keep = cli.json("remember", "The user's favourite colour is teal")
    gone = cli.json("remember", f"The user's secret hobby is {SECRET}")
    monkeypatch.setenv("MEM_PASSPHRASE", "correct horse")
    res = cli("encrypt")
    assert res.stdout == (
        f"Encrypted {db}. Keep the passphrase: without it the memories cannot be read.\n"
    )
    blob = raw_bytes(db)
    assert not blob.startswith(b"SQLite format 3") and SECRET.encode() not in blob
    assert b"teal" not in blob
    assert cli.json("search", SECRET)[0]["id"] == gone["id"]
    cli("forget", str(gone["id"]))
    cli("remember", "Another encrypted fact about teal")
    blob = raw_bytes(db)
    assert SECRET.encode() not in blob and b"teal" not in blob and b"encrypted fact" not in blob
    cli("decrypt")
    assert db.read_bytes().startswith(b"SQLite format 3")
    monkeypatch.delenv("MEM_PASSPHRASE")
    ids = [m["id"] for m in cli.json("list")]
    assert keep["id"] in ids and gone["id"] not in ids and len(ids) == 2


def test_wrong_and_missing_passphrase(
    cli: Any, mem_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = mem_home / "mem.db"
    cli("remember", "Something private")
    monkeypatch.setenv("MEM_PASSPHRASE", "right one")
    cli("encrypt")
    monkeypatch.setenv("MEM_PASSPHRASE", "wrong one")
    res = cli("list", code=4)
    assert res.stderr == (
        f"Error: Wrong passphrase for {db} (or the file is damaged): check MEM_PASSPHRASE or "
        "the keyring entry.\n"
    )
    monkeypatch.delenv("MEM_PASSPHRASE")
    res = cli("list", code=4)
    assert res.stderr == (
        f"Error: {db} is not a mem database (not SQLite, or encrypted): set MEM_PASSPHRASE if "
        "it is encrypted, or move it away or pass --db with another path.\n"
    )
    monkeypatch.setenv("MEM_PASSPHRASE", "right one")
    assert [m["content"] for m in cli.json("list")] == ["Something private"]


def test_new_database_is_encrypted_when_a_passphrase_is_set(
    cli: Any, mem_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEM_PASSPHRASE", "from the start")
    cli("remember", f"Born encrypted {SECRET}")
    assert SECRET.encode() not in (mem_home / "mem.db").read_bytes()
    assert cli.json("search", SECRET)[0]["content"] == f"Born encrypted {SECRET}"


@pytest.mark.parametrize(
    ("args", "setup", "message"),
    [
        (["encrypt"], "none", "No database at {db}: nothing to convert; check --db or MEM_HOME."),
        (["decrypt"], "plain", "{db} is not encrypted: nothing to do."),
        (
            ["encrypt"],
            "plain-noenv",
            "No passphrase: set MEM_PASSPHRASE, or run `mem encrypt` in a terminal.",
        ),
        (["encrypt"], "encrypted", "{db} is already encrypted: nothing to do."),
    ],
)
def test_conversion_errors(
    cli: Any,
    mem_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    setup: str,
    message: str,
) -> None:
    db = mem_home / "mem.db"
    if setup != "none":
        cli("remember", "x")
    if setup == "encrypted":
        monkeypatch.setenv("MEM_PASSPHRASE", "p")
        cli("encrypt")
    res = cli(*args, code=2)
    assert res.stderr == "Error: " + message.format(db=db) + "\n"


def test_passphrase_on_a_plain_database_is_an_error_naming_mem_encrypt(
    cli: Any, mem_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = mem_home / "mem.db"
    cli("remember", "Written before any passphrase")
    monkeypatch.setenv("MEM_PASSPHRASE", "I expect encryption")
    res = cli("remember", f"Would be plaintext {SECRET}", code=2)
    assert res.stderr == (
        f"Error: MEM_PASSPHRASE is set but {db} is not encrypted: run `mem encrypt` to encrypt "
        "it, or unset MEM_PASSPHRASE.\n"
    )
    assert SECRET.encode() not in db.read_bytes()
    cli("encrypt")
    cli("remember", f"Now encrypted {SECRET}")
    assert len(cli.json("list")) == 2


def test_encrypt_keyring_without_a_backend_fails_before_encrypting(
    cli: Any, mem_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = mem_home / "mem.db"
    cli("remember", "Still readable afterwards")
    monkeypatch.setenv("MEM_PASSPHRASE", "p")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    res = cli("encrypt", "--keyring", code=2)
    assert res.stderr.startswith("Error: Could not store the passphrase in the system keyring (")
    assert res.stderr.endswith(f"nothing was changed: {db} is still a plain file.\n")
    assert res.stdout == ""
    assert db.read_bytes().startswith(b"SQLite format 3")
    monkeypatch.delenv("MEM_PASSPHRASE")
    assert [m["content"] for m in cli.json("list")] == ["Still readable afterwards"]


_WRITER = """
import sys, time
from memory import MemoryStore
from memory.errors import MemError
db, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = None
for i in range(n):
    try:
        if store is None:
            store = MemoryStore.open(db)
        mem = store.remember(f"concurrent fact number {i}")
        print(f"ack {mem.content}", flush=True)
    except MemError as err:
        print(f"err {err}", flush=True)
    if store is not None and (i + 1) % hold == 0:
        store.close()
        store = None
    time.sleep(0.01)
if store is not None:
    store.close()
"""


@pytest.mark.parametrize("hold", [1, 40], ids=["open-per-write", "long-open"])
def test_encrypt_while_another_process_writes_loses_no_acknowledged_write(
    cli: Any, mem_home: Path, monkeypatch: pytest.MonkeyPatch, hold: int
) -> None:
    import os
    import subprocess
    import sys
    import time

    db = mem_home / "mem.db"
    cli("remember", "first")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db), "120", str(hold)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert writer.stdout is not None
    first = writer.stdout.readline()  # the writer is under way
    assert first.startswith("ack "), first + writer.stderr.read()
    time.sleep(0.1)
    monkeypatch.setenv("MEM_PASSPHRASE", "while busy")
    cli("encrypt")
    rest, errors = writer.communicate(timeout=120)
    lines = [first, *rest.splitlines()]
    acked = {line.removeprefix("ack ").strip() for line in lines if line.startswith("ack ")}
    failed = [line for line in lines if line.startswith("err ")]
    assert errors == "" and writer.returncode == 0, errors
    assert all("set MEM_PASSPHRASE" in line for line in failed), failed
    stored = {m["content"] for m in cli.json("list", "-n", "1000")}
    assert acked - stored == set()
    assert not db.read_bytes().startswith(b"SQLite format 3")


def test_second_connections_in_one_process_keep_the_first_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The REPL's formation and tending threads open their own connection to an
    encrypted file beside the chat's. Probing the file with the plain SQLite
    library and closing that probe dropped the SQLCipher connection's POSIX locks:
    the next open failed with an I/O error and the chat's own connection read a
    "malformed" file (the chat's /remember failed after a background tend)."""
    from memory import Memory

    monkeypatch.setenv("MEM_PASSPHRASE", "two connections")
    db = tmp_path / "enc.db"
    first = Memory.open(db)
    try:
        first.remember("the first connection's fact")
        for i in range(3):
            with Memory.open(db) as other:
                other.remember(f"a background write {i}")
            first.remember(f"the chat goes on {i}")
        assert len(first.list(limit=100)) == 7
    finally:
        first.close()
    assert SECRET.encode() not in db.read_bytes()
