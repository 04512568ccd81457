"""The store: schema, pragmas, writes, forgetting, import/export, errors."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from memory import MemoryStore
from memory.errors import (
    CorruptDatabaseError,
    EmbedderMismatchError,
    ImportFormatError,
    NotFoundError,
    SchemaTooNewError,
    UsageError,
)
from memory.lifecycle.forgetting import forget
from memory.lifecycle.transfer import export, import_file
from memory.retrieval.search import find
from memory.storage.sqlite.schema import _known_names, applied_names, schema_version


def test_schema_from_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with MemoryStore.open(path) as s:
        tables = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {
            "conversations",
            "messages",
            "memories",
            "memories_fts",
            "memories_vec",
            "memory_vectors",
            "memory_events",
            "meta",
            "_sqlite_migrations",
        } <= tables
        assert applied_names(s.conn) == _known_names()
        assert s.meta("schema_version") == str(schema_version())
        assert s.meta("embedder") == "minilm-static-256"
        assert s.meta("embedder_dim") == "256"
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert s.conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
        assert s.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_reopen_keeps_data_and_skips_migrations(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with MemoryStore.open(path) as s:
        s.remember("I like green tea")
    with MemoryStore.open(path) as s:
        assert [m.content for m in s.list_memories()] == ["I like green tea"]
        assert applied_names(s.conn) == _known_names()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with MemoryStore.open(path) as s:
        s.conn.execute(
            "INSERT INTO _sqlite_migrations(migration_set, name, applied_at) "
            "VALUES ('mem', 'm999_future', 'x')"
        )
    with pytest.raises(SchemaTooNewError) as err:
        MemoryStore.open(path)
    assert str(err.value) == (
        f"This database was written by a newer mem (schema {len(_known_names()) + 1} > "
        f"{len(_known_names())}): upgrade mem with "
        "`pip install -U mem`."
    )


def test_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    path.write_bytes(b"hello, I am a text file\n" * 10)
    with pytest.raises(CorruptDatabaseError) as err:
        MemoryStore.open(path)
    assert str(err.value) == (
        f"{path} is not a mem database (not SQLite, or encrypted): set MEM_PASSPHRASE if it "
        "is encrypted, or move it away or pass --db with another path."
    )
    assert path.read_bytes().startswith(b"hello")


def test_embedder_mismatch_names_reindex(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with MemoryStore.open(path) as s:
        s.remember("The user likes chess")
    with pytest.raises(EmbedderMismatchError) as err:
        MemoryStore.open(path, embedder="hash-128")
    assert str(err.value) == (
        "This database's vectors were built with minilm-static-256, not hash-128: run "
        "`mem reindex --embedder hash-128` to rebuild them, or drop the embedder setting."
    )
    with MemoryStore.open(path, embedder="hash-128", allow_embedder_change=True) as s:
        assert s.reindex() == 1
        assert s.meta("embedder") == "hash-128"
        assert find(s, "chess")[0].content == "The user likes chess"
    with MemoryStore.open(path) as s:  # no embedder named: the stored one is used
        assert s.embedder.name == "hash-128"


def test_remember_search_provenance(store: MemoryStore) -> None:
    mem = store.remember("My dog is called Rex", importance=0.8, tags=["pets", "pets"])
    assert mem.kind == "fact" and mem.metadata == {"tags": ["pets"]}
    hits = find(store, "dog name")
    assert hits[0].id == mem.id
    data = hits[0].to_dict()
    for key in (
        "id",
        "kind",
        "content",
        "score",
        "created_at",
        "conversation",
        "message_id",
        "external_id",
    ):
        assert key in data
    assert data["external_id"] is None and data["message_id"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"content": "   "}, "Nothing to remember: give some text."),
        (
            {"content": "x", "kind": "episode"},
            "Unknown kind 'episode' for remember: use fact or instruction.",
        ),
        ({"content": "x", "importance": 1.5}, "Invalid importance 1.5: use a number from 0 to 1."),
    ],
)
def test_remember_rejects_bad_input(
    store: MemoryStore, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError) as err:
        store.remember(**kwargs)
    assert str(err.value) == message


def test_forget_removes_every_trace(store: MemoryStore, raw_bytes: Any) -> None:
    mem = store.remember("My dog is called Rexolotl")
    keep = store.remember("My cat is called Tom")
    store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    assert b"Rexolotl" in raw_bytes(store.path)
    report = forget(store, [mem.id])
    assert report.memories == [mem.id]
    assert mem.id not in [h.id for h in find(store, "Rexolotl")]
    with pytest.raises(NotFoundError):
        store.get(mem.id)
    for table, col in (
        ("memories_fts", "rowid"),
        ("memories_vec", "id"),
        ("memory_vectors", "id"),
        ("memories", "id"),
    ):
        assert (
            store.conn.execute(
                f"SELECT count(*) FROM {table} WHERE {col} = ?", [mem.id]
            ).fetchone()[0]
            == 0
        )
    events = store.history(mem.id)
    assert [e.event for e in events] == ["add", "forget"]
    assert all(e.before is None and e.after is None for e in events)
    assert b"Rexolotl" not in raw_bytes(store.path)
    assert store.get(keep.id).content == "My cat is called Tom"


def test_forget_unknown_id_forgets_nothing(store: MemoryStore) -> None:
    mem = store.remember("The user plays the cello")
    with pytest.raises(NotFoundError) as err:
        forget(store, [mem.id, 999])
    assert str(err.value) == (
        "No memory with id 999 in profile 'default': see `mem list` for ids; nothing was forgotten."
    )
    assert store.get(mem.id).content == "The user plays the cello"


def test_forget_with_source_deletes_the_message(store: MemoryStore, raw_bytes: Any) -> None:
    conv = store.new_conversation()
    msg = store.log_message(conv, "user", "My locker code is Zanzibar42")
    fact = store.remember("The user's locker code is Zanzibar42", source_message_id=msg)
    report = forget(store, [fact.id], with_source=True)
    assert report.messages == [msg]
    assert len(report.memories) == 2  # the fact and the message's index entry
    assert store.message(msg) is None
    assert b"Zanzibar42" not in raw_bytes(store.path)


def test_superseded_is_hidden_unless_asked(store: MemoryStore) -> None:
    old = store.remember("The user lives in Lyon")
    new = store.remember("The user lives in Paris")
    store.supersede(old.id, new.id, reason="moved")
    assert [h.id for h in find(store, "lives")] == [new.id]
    assert {h.id for h in find(store, "lives", include_inactive=True)} == {old.id, new.id}
    assert store.get(old.id).superseded_by == new.id
    assert [e.event for e in store.history(old.id)] == ["add", "supersede"]


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
        "content": "What breed?",
        "timestamp": "2023-05-08T13:56:00",
        "id": "D1:2",
    },
    {
        "conversation": "c2",
        "role": "user",
        "speaker": "Cy",
        "content": "My puppy is a beagle",
        "timestamp": "2024-01-02T10:00:00",
        "id": "D1:1",
    },
]


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def test_import_messages_is_searchable_and_idempotent(store: MemoryStore) -> None:
    report = import_file(store, io.BytesIO(_jsonl(MESSAGES)))
    assert report.messages_added == 3 and report.conversations == ["c1", "c2"]
    again = import_file(store, io.BytesIO(_jsonl(MESSAGES)))
    assert again.messages_added == 0 and again.messages_skipped == 3
    hits = find(store, "puppy", conversation="c1")
    assert hits[0].external_id == "D1:1"
    assert hits[0].created_at == "2023-05-08T13:56:00+00:00"
    assert hits[0].speaker == "Ana" and hits[0].conversation == "c1"
    assert {h.conversation for h in find(store, "puppy")} == {"c1", "c2"}
    assert {h.conversation for h in find(store, "puppy", since="2024-01-01")} == {"c2"}
    assert {h.conversation for h in find(store, "puppy", until="2023-12-31")} == {"c1"}


def test_import_bad_line_names_it_and_imports_nothing(store: MemoryStore, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(_jsonl(MESSAGES[:2]) + b'{"conversation": "c1", "role": \n')
    with pytest.raises(ImportFormatError) as err:
        import_file(store, path)
    assert str(err.value) == (
        f"{path}:3: not valid JSON (Expecting value); fix or remove that line (nothing was "
        "imported)."
    )
    assert store.conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b'{"conversation": "c", "role": "user"}', 'missing "content"'),
        (
            b'{"conversation": "c", "role": "user", "content": 5.5, "timestamp": "soon"}',
            "timestamp 'soon' is not an ISO 8601 date",
        ),
        (b"[1, 2]", "not a JSON object"),
        (b"\xff\xfe", "not valid UTF-8"),
        (b'{"type": "memory", "content": "x", "kind": "weird"}', "unknown memory kind 'weird'"),
        (b'{"type": "alien"}', "unknown line type 'alien'"),
    ],
)
def test_import_line_errors(store: MemoryStore, line: bytes, why: str) -> None:
    with pytest.raises(ImportFormatError) as err:
        import_file(store, io.BytesIO(_jsonl(MESSAGES[:1]) + line + b"\n"))
    assert str(err.value) == f"<stdin>:2: {why}; fix or remove that line (nothing was imported)."


def test_export_import_roundtrip(tmp_path: Path) -> None:
    with MemoryStore.open(tmp_path / "a.db") as a:
        import_file(a, io.BytesIO(_jsonl(MESSAGES)))
        conv = a.new_conversation("chat")
        msg = a.log_message(conv, "user", "I live in Lyon")
        a.remember("The user lives in Lyon", source_message_id=msg, conversation=conv)
        a.remember("Answer briefly", kind="instruction")
        out = io.StringIO()
        counts = export(a, out)
    assert counts == {"conversations": 3, "messages": 4, "memories": 2}
    with MemoryStore.open(tmp_path / "b.db") as b:
        report = import_file(b, io.BytesIO(out.getvalue().encode()))
        assert report.messages_added == 4 and report.memories_added == 2
        again = import_file(b, io.BytesIO(out.getvalue().encode()))
        assert again.messages_added == 0 and again.memories_added == 0
        fact = next(m for m in b.list_memories(kind="fact"))
        assert fact.source_message_id is not None
        assert b.message(fact.source_message_id).content == "I live in Lyon"  # type: ignore[union-attr]


def test_unknown_conversation_filter(store: MemoryStore) -> None:
    with pytest.raises(NotFoundError) as err:
        find(store, "x", conversation="nope")
    assert str(err.value) == (
        "No conversation 'nope' in profile 'default': see `mem conversations` for ids."
    )


def test_ids_are_never_reused(store: MemoryStore) -> None:
    first = store.remember("first")
    last = store.remember("second")
    forget(store, [last.id])
    again = store.remember("third")
    assert again.id > last.id > first.id
    assert [e.event for e in store.history(last.id)] == ["add", "forget"]
    assert [e.event for e in store.history(again.id)] == ["add"]
