"""Import/export promises as a user sees them: the lines written, the rows stored,
the errors named. Written to kill the mutants of memory/transfer*.py that the
other tests let live (bench/mutation.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from memory import MemoryStore, timeutil
from memory.errors import ImportFormatError, SecretRefusedError
from memory.lifecycle.transfer import export, import_file
from memory.retrieval.search import find


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)


def _export(store: MemoryStore) -> list[dict[str, Any]]:
    out = io.StringIO()
    export(store, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _import(store: MemoryStore, rows: list[dict[str, Any]], **kwargs: Any) -> Any:
    return import_file(store, io.BytesIO(_jsonl(rows)), **kwargs)


def _msg(text: str, ext: str = "7", conv: str = "c", **extra: Any) -> dict[str, Any]:
    return {"conversation": conv, "role": "user", "content": text, "id": ext, **extra}


# ------------------------------------------------------------ the report
def test_import_json_report_names_every_count(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    rows = [
        _msg("first"),
        _msg("second", ext="8"),
        {"type": "memory", "content": "Ana likes tea"},
        {"type": "memory", "content": "Ana likes tea"},
    ]
    path.write_bytes(_jsonl(rows))
    assert cli.json("import", str(path)) == {
        "messages_added": 2,
        "messages_skipped": 0,
        "messages_replaced": 0,
        "memories_added": 1,
        "memories_skipped": 1,
        "documents_added": 0,
        "conversations": ["c"],
    }
    path.write_bytes(_jsonl([_msg("changed"), _msg("second", ext="8")]))
    report = cli.json("import", str(path), "--on-conflict", "replace")
    assert report["messages_replaced"] == 1 and report["messages_skipped"] == 1
    assert report["messages_added"] == 0 and report["conversations"] == ["c"]


def test_a_document_line_already_indexed_is_not_counted_again(store: MemoryStore) -> None:
    doc = {
        "type": "document",
        "path": "/notes/guide.md",
        "format": "markdown",
        "hash": "abc",
        "size": 10,
        "mtime": 1700000000.0,
        "chunks": 1,
        "chunker": "headings-v1",
    }
    assert _import(store, [doc]).documents_added == 1
    assert _import(store, [doc]).documents_added == 0
    assert [r["path"] for r in _export(store) if r["type"] == "document"] == ["/notes/guide.md"]


# ------------------------------------------------------------ conversations
def test_a_stored_summary_is_not_moved_by_an_import(store: MemoryStore) -> None:
    """A conversation that has a summary keeps it, and the message it covers up
    to, when a file brings another summary of it."""
    conv = store.new_conversation("Trip", conversation_id="c")
    first = store.log_message(conv, "user", "I live in Lyon")
    store.log_message(conv, "user", "I moved to Paris")
    store.set_summary(conv, "Lives in Lyon.", first)
    keys = [r["import_key"] for r in _export(store) if r["type"] == "message"]
    line = {
        "type": "conversation",
        "id": "c",
        "summary": "Lives in Paris.",
        "summary_upto": keys[1],
    }
    _import(store, [line])
    assert store.summary("c") == ("Lives in Lyon.", first)


def test_a_conversation_line_without_summary_sets_no_summary_point(store: MemoryStore) -> None:
    rows = [
        {"type": "conversation", "id": "c", "title": "Trip", "summary_upto": "c\x1fk1"},
        _msg("hello", ext="k1", import_key="c\x1fk1"),
    ]
    _import(store, rows)
    assert store.summary("c") == (None, None)
    conv = next(r for r in _export(store) if r["type"] == "conversation")
    assert (conv["title"], conv["summary"], conv["summary_upto"]) == ("Trip", None, None)


# ------------------------------------------------------------ --on-conflict replace
def test_replaced_message_is_found_with_its_provenance(store: MemoryStore) -> None:
    """After `--on-conflict replace` the search entry of the message is the new
    text, with the same provenance a logged message has: its message, its
    conversation, its speaker, its time; and a replaced message, like a logged
    one, is no memory of its own in the audit trail."""
    _import(store, [_msg("the ferry leaves at nine", timestamp="2024-03-01T10:00:00+00:00")])
    old = find(store, "ferry")[0]
    line = _msg("the zeppelin leaves at ten", speaker="Ana", metadata={"channel": "sms"})
    report = _import(store, [line], on_conflict="replace")
    assert report.messages_replaced == 1
    [message] = store.messages("c")
    [hit] = find(store, "zeppelin")
    assert hit.content == "the zeppelin leaves at ten"
    assert (hit.message_id, hit.conversation, hit.speaker) == (message.id, "c", "Ana")
    assert hit.created_at == message.created_at == "2024-03-01T10:00:00+00:00"
    assert (hit.source, hit.kind) == ("message:user", "message")
    assert store.history(hit.id) == []
    [forgot] = store.history(old.id)
    assert (forgot.event, forgot.actor) == ("forget", "import")
    assert forgot.detail == {
        "kind": "message",
        "source": "import",
        "reason": "replaced by import",
        "profile": "default",
    }
    [exported] = [r for r in _export(store) if r["type"] == "message"]
    assert exported["metadata"] == {"channel": "sms"} and exported["speaker"] == "Ana"


def test_replaced_message_without_speaker_is_found_under_its_role(store: MemoryStore) -> None:
    _import(store, [_msg("the ferry leaves at nine")])
    _import(store, [_msg("the zeppelin leaves at ten")], on_conflict="replace")
    [hit] = find(store, "zeppelin")
    assert hit.speaker == "user"


def test_cli_import_extract_from_stdin_names_a_long_line(cli: Any) -> None:
    """`--extract` reads stdin twice, so it reads it whole first: a too-long
    line is still refused by its line number, before any model is called."""
    from memory.lifecycle.transfer import MAX_LINE_BYTES

    data = b'{"conversation": "c", "role": "user", "content": "hi"}\n' + b"x" * (
        MAX_LINE_BYTES + 10
    )
    res = cli("import", "-", "--extract", "--model", "openai/none", input=data, code=2)
    assert res.stderr.startswith("Error: <stdin>:2: the line is longer than 16 MB ")


# ------------------------------------------------------------ bad lines, named
_DOC = {
    "type": "document",
    "path": "/notes/guide.md",
    "format": "markdown",
    "hash": "abc",
    "size": 10,
    "mtime": 1700000000.0,
    "chunks": 1,
    "chunker": "headings-v1",
}


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ({"type": "conversation"}, 'missing "id"'),
        ({"type": "conversation", "id": " "}, '"id" is empty'),
        ({"type": "conversation", "id": ["c"]}, '"id" must be a string'),
        ({"type": "conversation", "id": "c", "title": {}}, '"title" must be a string'),
        ({"type": "conversation", "id": "c", "summary": []}, '"summary" must be a string'),
        (
            {"type": "conversation", "id": "c", "summary_upto": True},
            '"summary_upto" must be a string',
        ),
        (
            {"type": "conversation", "id": "c", "created_at": "soon"},
            "created_at 'soon' is not an ISO 8601 date",
        ),
        (
            {"type": "conversation", "id": "c", "updated_at": "later"},
            "updated_at 'later' is not an ISO 8601 date",
        ),
        ({**_DOC, "path": None}, 'missing "path"'),
        ({**_DOC, "format": ["md"]}, '"format" must be a string'),
        ({**_DOC, "hash": " "}, '"hash" is empty'),
        ({**_DOC, "chunker": ""}, '"chunker" is empty'),
        ({**_DOC, "size": -1}, '"size" must be a whole number from 0 to 2**63 - 1'),
        ({**_DOC, "chunks": 1.5}, '"chunks" must be a whole number from 0 to 2**63 - 1'),
        ({**_DOC, "mtime": True}, '"mtime" must be a time in seconds since 1970'),
        ({**_DOC, "mtime": "1700000000"}, '"mtime" must be a time in seconds since 1970'),
        ({**_DOC, "mtime": -0.5}, '"mtime" must be a time in seconds since 1970'),
        ({**_DOC, "mtime": 1e11}, '"mtime" must be a time in seconds since 1970'),
        ({**_DOC, "added_at": "soon"}, "added_at 'soon' is not an ISO 8601 date"),
        ({**_DOC, "updated_at": "later"}, "updated_at 'later' is not an ISO 8601 date"),
    ],
)
def test_a_bad_conversation_or_document_line_is_named(
    store: MemoryStore, tmp_path: Path, line: dict[str, Any], why: str
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(_jsonl([_msg("fine"), line]))
    with pytest.raises(ImportFormatError) as err:
        import_file(store, path)
    assert str(err.value) == f"{path}:2: {why}; fix or remove that line (nothing was imported)."
    assert store.messages("c") == []


@pytest.mark.parametrize("mtime", [0, 0.0, 99_999_999_999.5])
def test_document_times_at_the_edges_are_accepted(store: MemoryStore, mtime: float) -> None:
    assert _import(store, [{**_DOC, "mtime": mtime}]).documents_added == 1
    [doc] = [r for r in _export(store) if r["type"] == "document"]
    assert doc["mtime"] == mtime


def test_a_document_line_without_times_gets_the_time_of_the_import(store: MemoryStore) -> None:
    before = timeutil.now_iso()
    _import(store, [_DOC])
    [doc] = [r for r in _export(store) if r["type"] == "document"]
    assert before <= doc["added_at"] <= timeutil.now_iso()
    assert before <= doc["updated_at"] <= timeutil.now_iso()


def test_a_secret_in_a_document_path_is_redacted(store: MemoryStore) -> None:
    secret = "sk-proj-abcdefghijklmnop1234"
    _import(store, [{**_DOC, "path": f"/keys/{secret}.txt"}])
    [doc] = [r for r in _export(store) if r["type"] == "document"]
    assert doc["path"] == "/keys/[redacted API key].txt"


def test_a_secret_in_a_document_path_is_refused_by_its_line(tmp_path: Path) -> None:
    secret = "sk-proj-abcdefghijklmnop1234"
    with MemoryStore.open(tmp_path / "r.db", secrets="refuse") as store:
        with pytest.raises(SecretRefusedError) as err:
            _import(store, [_DOC, {**_DOC, "path": f"/keys/{secret}.txt"}])
        assert str(err.value).startswith("<stdin>:2: ")
        assert str(err.value).endswith(" (nothing was imported)")


@pytest.mark.parametrize(
    ("limit", "size"), [(1_000_000, "1 MB"), (2_500_000, "2 MB"), (5000, "5 KB"), (500, "1 KB")]
)
def test_the_line_limit_is_named_in_whole_units(store: MemoryStore, limit: int, size: str) -> None:
    data = b'{"content": "' + b"x" * limit + b'"}\n'
    with pytest.raises(ImportFormatError) as err:
        import_file(store, io.BytesIO(data), max_line_bytes=limit)
    assert str(err.value).startswith(f"<stdin>:1: the line is longer than {size} (the limit ")


def test_two_lines_with_one_import_key_and_other_text_name_the_key(store: MemoryStore) -> None:
    rows = [
        {"conversation": "c", "role": "user", "content": "one", "import_key": "k1"},
        {"conversation": "c", "role": "user", "content": "two", "import_key": "k1"},
    ]
    with pytest.raises(ImportFormatError) as err:
        _import(store, rows)
    assert str(err.value).startswith(
        "<stdin>:2: message key 'k1' is also on line 1 with other text; "
    )


# ------------------------------------------------------------ memory lines
@pytest.mark.parametrize(
    ("line", "why"),
    [
        ({"type": "memory", "content": "x", "importance": "0.9"}, '"importance" must be a number'),
        ({"type": "memory", "content": "x", "confidence": [1]}, '"confidence" must be a number'),
        ({"type": "memory", "content": "x", "id": 1.5}, '"id" must be a memory id'),
        ({"type": "memory", "content": "x", "superseded_by": [2]}, '"superseded_by" must be a'),
        ({"type": "memory", "content": "x", "superseded_by": True}, '"superseded_by" must be a'),
        ({"type": "memory", "content": "x", "id": {"n": 1}}, '"id" must be a memory id'),
    ],
)
def test_a_bad_memory_line_is_named(
    store: MemoryStore, tmp_path: Path, line: dict[str, Any], why: str
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(_jsonl([{"type": "memory", "content": "fine"}, line]))
    with pytest.raises(ImportFormatError) as err:
        import_file(store, path)
    assert str(err.value).startswith(f"{path}:2: {why}")
    assert str(err.value).endswith("; fix or remove that line (nothing was imported).")
    assert store.list_memories() == []


def test_memory_ids_that_are_names_or_numbers_are_accepted(store: MemoryStore) -> None:
    rows = [
        {"type": "memory", "id": "lyon", "content": "The user lives in Lyon", "superseded_by": 2},
        {"type": "memory", "id": 2, "content": "The user lives in Paris"},
    ]
    assert _import(store, rows).memories_added == 2
    lyon, paris = sorted(_export(store), key=lambda r: r["id"])
    assert lyon["superseded_by"] == paris["id"] and paris["superseded_by"] is None


def test_an_imported_memory_is_audited_as_an_import(store: MemoryStore) -> None:
    _import(store, [{"type": "memory", "content": "Ana likes tea"}])
    [memory] = store.list_memories()
    [added] = store.history(memory.id)
    assert (added.event, added.actor) == ("add", "import")


def test_a_line_ended_validity_is_kept(store: MemoryStore) -> None:
    line = {
        "type": "memory",
        "content": "The user lived in Lyon",
        "created_at": "2020-01-01T00:00:00+00:00",
        "valid_until": "2021-06-01T00:00:00+00:00",
    }
    _import(store, [line])
    [memory] = store.list_memories(include_inactive=True)
    assert memory.valid_until == "2021-06-01T00:00:00+00:00" and not memory.active


def test_a_memory_superseded_outside_the_file_is_no_longer_current(store: MemoryStore) -> None:
    """Its successor is not in the file: it cannot link to it, but it must not
    come back as a current fact either."""
    line = {"type": "memory", "id": 1, "content": "The user lives in Lyon", "superseded_by": 99}
    _import(store, [line])
    [memory] = store.list_memories(include_inactive=True)
    assert memory.superseded_by is None and memory.valid_until is not None
    assert not memory.active
    assert find(store, "Lyon") == []


def test_a_memory_names_its_conversation_into_being(store: MemoryStore) -> None:
    line = {
        "type": "memory",
        "content": "Ana planned a trip",
        "kind": "episode",
        "conversation": "trip",
        "created_at": "2022-02-02T00:00:00+00:00",
    }
    _import(store, [line])
    [conv] = [r for r in _export(store) if r["type"] == "conversation"]
    assert (conv["id"], conv["created_at"]) == ("trip", "2022-02-02T00:00:00+00:00")


def test_one_stored_memory_matches_one_line(store: MemoryStore) -> None:
    """Two lines with the same text (two memories in the file that exported
    them) against one stored memory: one is already there, the other is new."""
    stamp = "2024-01-01T00:00:00+00:00"
    store.add_memory("Ana likes tea", created_at=stamp)
    rows = [
        {"type": "memory", "id": 1, "content": "Ana likes tea", "created_at": stamp},
        {"type": "memory", "id": 2, "content": "Ana likes tea", "created_at": stamp},
    ]
    report = _import(store, rows)
    assert (report.memories_added, report.memories_skipped) == (1, 1)
    assert len(store.list_memories()) == 2


def test_an_export_given_twice_in_one_file_adds_nothing(store: MemoryStore) -> None:
    store.remember("Ana likes tea")
    store.remember("Ana lives in Lyon")
    lines = _export(store)
    report = _import(store, lines + lines)
    assert (report.memories_added, report.memories_skipped) == (0, 4)
    assert len(store.list_memories()) == 2


def test_a_new_memory_superseded_by_one_already_stored_links_to_it(store: MemoryStore) -> None:
    paris = store.add_memory("The user lives in Paris", created_at="2024-02-01T00:00:00+00:00")
    rows = [
        {
            "type": "memory",
            "id": 5,
            "content": "The user lives in Paris",
            "created_at": "2024-02-01T00:00:00+00:00",
        },
        {"type": "memory", "id": 4, "content": "The user lives in Lyon", "superseded_by": 5},
    ]
    report = _import(store, rows)
    assert (report.memories_added, report.memories_skipped) == (1, 1)
    lyon = next(m for m in store.list_memories(include_inactive=True) if "Lyon" in m.content)
    assert lyon.superseded_by == paris


_WHOLE = "must be a whole number from 0 to 2**63 - 1"


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ({}, 'missing "content"'),
        ({"content": " "}, '"content" is empty'),
        ({"content": ["x"]}, '"content" must be a string'),
        ({"content": "x", "kind": "message"}, "unknown memory kind 'message'"),
        ({"content": "x", "kind": "belief"}, "unknown memory kind 'belief'"),
        ({"content": "x", "importance": 1.5}, '"importance" must be a number from 0 to 1'),
        ({"content": "x", "importance": -0.1}, '"importance" must be a number from 0 to 1'),
        ({"content": "x", "confidence": True}, '"confidence" must be a number from 0 to 1'),
        ({"content": "x", "use_count": -1}, f'"use_count" {_WHOLE}'),
        ({"content": "x", "use_count": 1.0}, f'"use_count" {_WHOLE}'),
        ({"content": "x", "use_count": True}, f'"use_count" {_WHOLE}'),
        ({"content": "x", "use_count": 2**63}, f'"use_count" {_WHOLE}'),
        ({"content": "x", "created_at": "soon"}, "created_at 'soon' is not an ISO 8601 date"),
        ({"content": "x", "valid_until": "later"}, "valid_until 'later' is not an ISO 8601 date"),
        ({"content": "x", "expires_at": "never"}, "expires_at 'never' is not an ISO 8601 date"),
        ({"content": "x", "source": {"a": 1}}, '"source" must be a string'),
        ({"content": "x", "speaker": ["Ana"]}, '"speaker" must be a string'),
        ({"content": "x", "id": [1]}, '"id" must be a memory id (a number) or null'),
    ],
)
def test_a_bad_memory_field_is_named_exactly(
    store: MemoryStore, tmp_path: Path, line: dict[str, Any], why: str
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(_jsonl([{"type": "memory", "content": "fine"}, {"type": "memory", **line}]))
    with pytest.raises(ImportFormatError) as err:
        import_file(store, path)
    assert str(err.value) == f"{path}:2: {why}; fix or remove that line (nothing was imported)."


def test_numbers_at_their_limits_are_accepted(store: MemoryStore) -> None:
    rows = [
        {"type": "memory", "content": "low", "importance": 0, "confidence": 0, "use_count": 0},
        {"type": "memory", "content": "high", "importance": 1, "confidence": 1.0,
         "use_count": 2**63 - 1},
    ]  # fmt: skip
    assert _import(store, rows).memories_added == 2
    low, high = sorted(store.list_memories(), key=lambda m: m.content != "low")
    assert (low.importance, low.confidence, low.use_count) == (0.0, 0.0, 0)
    assert (high.importance, high.confidence, high.use_count) == (1.0, 1.0, 2**63 - 1)


# ------------------------------------------------------------ export lines
def test_export_lines_name_a_conversation_and_its_messages(store: MemoryStore) -> None:
    conv = store.new_conversation(
        "Trip", conversation_id="c1", created_at="2024-05-01T09:00:00+00:00"
    )
    store.log_message(
        conv, "user", "I live in Lyon", speaker="Ana",
        created_at="2024-05-02T10:00:00+00:00", external_id="D1:3",
    )  # fmt: skip
    lines = _export(store)
    conversation = next(r for r in lines if r["type"] == "conversation")
    assert conversation["updated_at"] == "2024-05-02T10:00:00+00:00"
    message = next(r for r in lines if r["type"] == "message")
    assert (message["id"], message["speaker"], message["timestamp"]) == (
        "D1:3",
        "Ana",
        "2024-05-02T10:00:00+00:00",
    )
    assert message["import_key"] != "D1:3"
    with MemoryStore.open(store.path.parent / "other.db") as other:
        _import(other, lines)
        again = next(r for r in _export(other) if r["type"] == "conversation")
        assert again["updated_at"] == "2024-05-02T10:00:00+00:00"


def test_a_link_to_another_profiles_message_is_not_exported(store: MemoryStore) -> None:
    """A memory linked to a message of another profile (never followed, see
    forgetting) exports without the link, and without naming that message."""
    with MemoryStore.open(store.path, profile="bob") as bob:
        theirs = bob.log_message(bob.new_conversation("b"), "user", "Bob lives in Lyon")
    store.add_memory("The user lives in Lyon", source_message_id=theirs)
    [line] = [r for r in _export(store) if r["type"] == "memory"]
    assert line["content"] == "The user lives in Lyon" and "source_message" not in line
