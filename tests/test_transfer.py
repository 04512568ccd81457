"""Export and import: lossless round trips, idempotence under the secret gate,
external-id conflicts, bounded lines, and every stored string gated."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory import MemoryStore, timeutil
from memory.errors import ImportFormatError, SecretRefusedError
from memory.lifecycle.transfer import export, import_file
from memory.privacy import secrets_gate
from memory.retrieval.search import find


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)


def _export(store: MemoryStore) -> list[dict[str, Any]]:
    out = io.StringIO()
    export(store, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def normalised(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An export with database ids replaced by positions (ids aside, every field)."""
    memories = [r for r in records if r["type"] == "memory"]
    position = {r["id"]: i for i, r in enumerate(memories)}
    result = []
    for rec in records:
        rec = dict(rec)
        if rec["type"] == "memory":
            rec["id"] = position[rec["id"]]
            rec.pop("source_message_id")
            if rec["superseded_by"] is not None:
                rec["superseded_by"] = position.get(rec["superseded_by"], "outside")
        result.append(rec)
    return result


def round_trip(store: MemoryStore, tmp_path: Path, name: str = "b.db") -> list[dict[str, Any]]:
    """Export ``store``, import that into an empty database, export again."""
    first = _export(store)
    with MemoryStore.open(tmp_path / name) as other:
        import_file(other, io.BytesIO(_jsonl(first)))
        return _export(other)


def _rich_store(a: MemoryStore, folder: Path) -> None:
    from memory.knowledge.documents import add_documents

    (folder / "guide.md").write_text("# Install\n\nUse pip.\n\n# Run\n\nType mem.\n")
    report = add_documents(a, [folder / "guide.md"], profile=a.profile)
    assert report.new == 1
    import_file(
        a,
        io.BytesIO(
            _jsonl(
                [
                    {"conversation": "c1", "role": "user", "speaker": "Ana", "content": "hi"},
                    {"conversation": "c1", "role": "user", "content": "bye", "id": "D1:2"},
                ]
            )
        ),
    )
    conv = a.new_conversation("Trip to Lyon", created_at="2024-01-01T09:00:00+00:00")
    first = a.log_message(conv, "user", "I live in Lyon", speaker="Ana")
    a.log_message(conv, "assistant", "Noted.")
    a.set_summary(conv, "Ana lives in Lyon.", first)
    fact = a.remember(
        "The user lives in Lyon", source_message_id=first, conversation=conv, tags=["home"]
    )
    a.remember("Answer briefly", kind="instruction", importance=0.9)
    episode = a.add_memory(
        "Ana planned a trip",
        kind="episode",
        conversation=conv,
        external_id="ep-7",
        speaker="Ana",
        confidence=0.6,
        created_at="2023-05-08T13:56:00+00:00",
        metadata={"nested": {"list": [1, 2.5, None, True]}},
    )
    a.add_memory(
        "Install with pip.",
        kind="document",
        source="document",
        external_id="docs/a.md:1-3",
        metadata={"path": "docs/a.md", "heading": "Install", "line_start": 1, "line_end": 3},
    )
    newer = a.remember("The user lives in Paris")
    newest = a.remember("The user lives in Berlin")
    a.supersede(fact.id, newer.id, reason="moved")
    a.supersede(newer.id, newest.id, reason="moved again")
    a.remember("my password is Hunter2!x42")  # stored redacted
    a.touch([episode])
    a.touch([episode])
    a.conn.execute(
        "UPDATE memories SET expires_at = '2030-01-01T00:00:00+00:00' WHERE id = ?", [episode]
    )


# ------------------------------------------------------------------- item 1
def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    with MemoryStore.open(tmp_path / "a.db") as a:
        _rich_store(a, tmp_path)
        first = _export(a)
        second = round_trip(a, tmp_path)
    assert normalised(second) == normalised(first)
    conv = next(r for r in second if r["type"] == "conversation" and r["title"] == "Trip to Lyon")
    assert conv["summary"] == "Ana lives in Lyon."
    episode = next(r for r in second if r["type"] == "memory" and r["kind"] == "episode")
    assert (episode["conversation"], episode["speaker"], episode["external_id"]) == (
        conv["id"],
        "Ana",
        "ep-7",
    )
    assert episode["use_count"] == 2 and episode["expires_at"] == "2030-01-01T00:00:00+00:00"
    assert [r["path"] for r in second if r["type"] == "document"] == [str(tmp_path / "guide.md")]


def test_imported_documents_are_listed_and_not_redone(tmp_path: Path) -> None:
    from memory.knowledge.documents import add_documents, documents

    with MemoryStore.open(tmp_path / "a.db") as a:
        _rich_store(a, tmp_path)
        data = _jsonl(_export(a))
        listed = documents(a, profile=a.profile)
    with MemoryStore.open(tmp_path / "b.db") as b:
        assert import_file(b, io.BytesIO(data)).documents_added == 1
        assert documents(b, profile=b.profile) == listed
        again = add_documents(b, [tmp_path / "guide.md"], profile=b.profile)
        assert (again.unchanged, again.chunks_added) == (1, 0)


def test_summary_resumes_after_the_same_message(tmp_path: Path) -> None:
    """The summary covers messages up to one message; after the import it still
    does (not none of them, which would summarise them twice)."""
    with MemoryStore.open(tmp_path / "a.db") as a:
        _rich_store(a, tmp_path)
        conv = next(r["id"] for r in _export(a) if r.get("title") == "Trip to Lyon")
        out = io.StringIO()
        export(a, out)
    with MemoryStore.open(tmp_path / "b.db") as b:
        import_file(b, io.BytesIO(out.getvalue().encode()))
        summary, upto = b.summary(conv)
        assert summary == "Ana lives in Lyon."
        assert upto is not None and b.message(upto).content == "I live in Lyon"  # type: ignore[union-attr]


def test_superseded_chain_survives_import(tmp_path: Path) -> None:
    with MemoryStore.open(tmp_path / "a.db") as a:
        _rich_store(a, tmp_path)
        second = round_trip(a, tmp_path)
    by_id = {r["id"]: r for r in second if r["type"] == "memory"}
    lyon = next(r for r in by_id.values() if r["content"] == "The user lives in Lyon")
    paris = by_id[lyon["superseded_by"]]
    assert paris["content"] == "The user lives in Paris"
    assert by_id[paris["superseded_by"]]["content"] == "The user lives in Berlin"


def test_reimport_of_an_export_adds_nothing(tmp_path: Path) -> None:
    with MemoryStore.open(tmp_path / "a.db") as a:
        _rich_store(a, tmp_path)
        data = _jsonl(_export(a))
        before = _export(a)
        report = import_file(a, io.BytesIO(data))
        assert report.messages_added == 0 and report.memories_added == 0
        assert _export(a) == before


def test_two_equal_memories_stay_two(tmp_path: Path) -> None:
    """Found by the property below: the duplicate check matched the second of two
    equal memories (same text, same second) to the first, and dropped it."""
    with MemoryStore.open(tmp_path / "a.db") as a:
        for _ in range(2):
            a.add_memory("0", created_at="2024-01-01T00:00:00+00:00")
        second = round_trip(a, tmp_path)
        assert len([r for r in second if r["type"] == "memory"]) == 2
        data = _jsonl(_export(a))
        assert import_file(a, io.BytesIO(data)).memories_skipped == 2


def test_a_repeated_line_in_one_file_is_one_memory(store: MemoryStore) -> None:
    """Two exports of one database joined in one file: each memory once."""
    line = {"type": "memory", "id": 4, "content": "x", "created_at": "2024-01-01"}
    plain = {"type": "memory", "content": "y"}
    report = import_file(store, io.BytesIO(_jsonl([line, plain, line, plain])))
    assert (report.memories_added, report.memories_skipped) == (2, 2)


# ------------------------------------------------------------------- item 2
@pytest.mark.parametrize(
    "line",
    [
        {"type": "memory", "content": "my password is Hunter2!x42"},
        {"type": "memory", "content": "wifi password: Sunflower-77", "created_at": "2024-02-02"},
        {"type": "memory", "content": "no secret, no timestamp"},
    ],
)
def test_same_line_twice_is_added_once(store: MemoryStore, line: dict[str, Any]) -> None:
    first = import_file(store, io.BytesIO(_jsonl([line])))
    again = import_file(store, io.BytesIO(_jsonl([line])))
    assert (first.memories_added, again.memories_added, again.memories_skipped) == (1, 0, 1)
    assert len(store.list_memories()) == 1


# ------------------------------------------------------------------- item 3
def _msg(text: str, ext: str = "7", conv: str = "c") -> dict[str, Any]:
    return {"conversation": conv, "role": "user", "content": text, "id": ext}


def test_same_id_other_text_names_both_lines(store: MemoryStore) -> None:
    data = _jsonl([_msg("first"), _msg("first"), _msg("second")])
    with pytest.raises(ImportFormatError) as err:
        import_file(store, io.BytesIO(data))
    assert str(err.value) == (
        "<stdin>:3: message id '7' of conversation 'c' is also on line 1 with other text; "
        "give it another id, or import with --on-conflict skip or replace (nothing was "
        "imported)."
    )
    assert store.conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0


def test_same_id_same_text_is_skipped(store: MemoryStore) -> None:
    report = import_file(store, io.BytesIO(_jsonl([_msg("same"), _msg("same")])))
    assert (report.messages_added, report.messages_skipped) == (1, 1)


def test_same_id_in_other_conversations_is_no_conflict(store: MemoryStore) -> None:
    report = import_file(store, io.BytesIO(_jsonl([_msg("a", conv="x"), _msg("b", conv="y")])))
    assert report.messages_added == 2


def test_same_id_as_a_stored_message_with_other_text(store: MemoryStore) -> None:
    import_file(store, io.BytesIO(_jsonl([_msg("first")])))
    with pytest.raises(ImportFormatError) as err:
        import_file(store, io.BytesIO(_jsonl([_msg("changed")])))
    assert str(err.value).startswith(
        "<stdin>:1: message id '7' of conversation 'c' is already stored (message #1) with "
        "other text; "
    )
    assert [m.content for m in store.messages("c")] == ["first"]


def test_on_conflict_skip_and_replace(store: MemoryStore) -> None:
    data = _jsonl([_msg("first"), _msg("second")])
    report = import_file(store, io.BytesIO(data), on_conflict="skip")
    assert (report.messages_added, report.messages_skipped) == (1, 1)
    assert [m.content for m in store.messages("c")] == ["first"]
    report = import_file(store, io.BytesIO(_jsonl([_msg("third")])), on_conflict="replace")
    assert report.messages_replaced == 1
    assert [m.content for m in store.messages("c")] == ["third"]
    hits = find(store, "third")
    assert [h.content for h in hits] == ["third"] and hits[0].external_id == "7"
    assert (
        store.conn.execute("SELECT count(*) FROM memories WHERE content = 'first'").fetchone()[0]
        == 0
    )
    assert store.conn.execute("SELECT count(*) FROM memories_fts('first')").fetchone()[0] == 0


def test_on_conflict_replace_within_the_file_keeps_the_last(store: MemoryStore) -> None:
    data = _jsonl([_msg("first"), _msg("second"), _msg("third", ext="8")])
    report = import_file(store, io.BytesIO(data), on_conflict="replace")
    assert report.messages_added == 2
    assert [m.content for m in store.messages("c")] == ["second", "third"]


def test_cli_on_conflict(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    path.write_bytes(_jsonl([_msg("first"), _msg("second")]))
    res = cli("import", str(path), code=2)
    assert ":2: message id '7'" in res.stderr and "line 1" in res.stderr
    res = cli("import", str(path), "--on-conflict", "skip", "--json")
    assert json.loads(res.stdout)["messages_skipped"] == 1
    res = cli("import", str(path), "--on-conflict", "bogus", code=2)
    assert "unexpected" not in res.stderr.lower()


# ------------------------------------------------------------------- item 8
def test_a_line_longer_than_the_limit_is_refused(store: MemoryStore) -> None:
    data = _jsonl([_msg("ok")]) + b'{"content": "' + b"x" * 5000 + b'"}\n'
    with pytest.raises(ImportFormatError) as err:
        import_file(store, io.BytesIO(data), max_line_bytes=4096)
    assert str(err.value) == (
        "<stdin>:2: the line is longer than 4 KB (the limit for one line); split that "
        "record, or fix or remove that line (nothing was imported)."
    )


def test_cli_import_dev_zero_is_refused(cli: Any) -> None:
    res = cli("import", "/dev/zero", code=2)
    assert res.stderr.startswith("Error: /dev/zero:1: the line is longer than ")
    assert "MB (the limit for one line)" in res.stderr


def test_cli_import_stdin_with_a_long_line(cli: Any) -> None:
    from memory.lifecycle.transfer import MAX_LINE_BYTES

    res = cli("import", "-", input=b"x" * (MAX_LINE_BYTES + 10), code=2)
    assert res.stderr.startswith("Error: <stdin>:1: the line is longer than ")


@pytest.mark.parametrize(("depth", "error"), [(100, False), (101, True), (500, True)])
def test_deep_metadata_is_stored_or_named(store: MemoryStore, depth: int, error: bool) -> None:
    """Gating, storing and exporting metadata walk it; 500 levels (which JSON
    parsing allows) gave "unexpected RecursionError" while gating, so the depth is
    bounded with an error that says so."""
    meta = "[" * (depth - 1) + "1" + "]" * (depth - 1)
    line = b'{"type": "memory", "content": "deep", "metadata": {"a": %s}}\n' % meta.encode()
    if not error:
        assert import_file(store, io.BytesIO(line)).memories_added == 1
        return
    with pytest.raises(ImportFormatError) as err:
        import_file(store, io.BytesIO(line))
    assert str(err.value).startswith('<stdin>:1: "metadata" nests deeper than 100 levels; ')


# ---------------------------------------------------------- issue 11 item 6
SECRET = "sk-proj-abcdefghijklmnop1234"


def test_import_gates_source_metadata_titles_and_summaries(store: MemoryStore) -> None:
    lines = [
        {"type": "conversation", "id": "c9", "title": f"key {SECRET}", "summary": SECRET},
        {
            "type": "memory",
            "content": "a plain fact",
            "source": f"paste {SECRET}",
            "metadata": {"value": SECRET, "deep": [{SECRET: f"the api key is {SECRET}"}]},
        },
        {"conversation": "c9", "role": "user", "content": "hi", "metadata": {"k": SECRET}},
    ]
    import_file(store, io.BytesIO(_jsonl(lines)))
    out = io.StringIO()
    export(store, out)
    assert SECRET not in out.getvalue()
    memory = store.list_memories(kind="fact")[0]
    assert memory.metadata["value"] == "[redacted API key]"
    assert memory.metadata["redacted"] == ["API key"]
    assert memory.source == "paste [redacted API key]"
    assert store.conn.execute("SELECT title, summary FROM conversations").fetchone() == (
        "key [redacted API key]",
        "[redacted API key]",
    )


def test_import_refuse_names_the_line(tmp_path: Path) -> None:
    lines = [
        {"type": "memory", "content": "a plain fact"},
        {"type": "conversation", "id": "c9", "title": f"key {SECRET}"},
    ]
    with MemoryStore.open(tmp_path / "r.db", secrets="refuse") as store:
        with pytest.raises(SecretRefusedError) as err:
            import_file(store, io.BytesIO(_jsonl(lines)))
        assert str(err.value).startswith("<stdin>:2: Not stored: the text looks like it holds")
        assert store.list_memories() == []


# --------------------------------------------------------- property (issue 12)
SECRETS = [
    "my password is Hunter2!x42",
    f"use {SECRET} for the bot",
    "card 4111 1111 1111 1111 expires soon",
    "IBAN GB82 WEST 1234 5698 7654 32",
    "api key: AbC123xyz!99",
    "AKIAIOSFODNN7EXAMPLE",
]
texts = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40),
    st.sampled_from(SECRETS),
)
solid = texts.filter(lambda t: t.strip())
stamps = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2999, 1, 1), timezones=st.just(UTC)
    ).map(timeutil.to_iso),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
metadata = st.dictionaries(texts, json_values, max_size=3)
messages = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant"]),
        "speaker": st.none() | texts,
        "content": texts,
        "id": st.none() | texts,
        "at": stamps,
        "metadata": metadata,
    }
)
conversations = st.fixed_dictionaries(
    {
        "title": st.none() | texts,
        "summary": st.none() | texts,
        "at": stamps,
        "messages": st.lists(messages, max_size=3),
    }
)
unit = st.floats(min_value=0, max_value=1)
memories = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["fact", "instruction", "episode", "summary", "document"]),
        "content": solid,
        "source": solid,
        "importance": unit,
        "confidence": unit,
        "at": stamps,
        "conversation": st.none() | st.integers(0, 2),
        "source_message": st.none() | st.integers(0, 8),
        "external_id": st.none() | solid,
        "speaker": st.none() | solid,
        "metadata": metadata,
        "use_count": st.integers(0, 2**63 - 1),
        "last_used_at": stamps,
        "expires_at": stamps,
    }
)
store_specs = st.fixed_dictionaries(
    {
        "conversations": st.lists(conversations, max_size=3),
        "memories": st.lists(memories, max_size=6),
        "supersede": st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=4),
        "files": st.lists(
            st.tuples(solid, st.integers(0, 2**63 - 1), st.floats(0, 1e10), st.integers(0, 99)),
            max_size=2,
            unique_by=lambda f: f[0],
        ),
    }
)


def _gated(value: Any) -> Any:
    """A value as mem stores it: every string already through the secret gate."""
    if isinstance(value, str):
        return secrets_gate.apply(value, "redact").text
    if isinstance(value, list):
        return [_gated(v) for v in value]
    if isinstance(value, dict):
        return {_gated(k): _gated(v) for k, v in value.items()}
    return value


def build(store: MemoryStore, spec: dict[str, Any]) -> None:
    """A store holding ``spec``, written through the engine's own API."""
    conn = store.conn
    convs: list[str] = []
    message_ids: list[int] = []
    for c in spec["conversations"]:
        cid = store.new_conversation(_gated(c["title"]), created_at=c["at"])
        convs.append(cid)
        ids = [
            store.log_message(
                cid,
                m["role"],
                m["content"],
                speaker=m["speaker"],
                created_at=m["at"],
                external_id=m["id"],
                metadata=_gated(m["metadata"]),
            )
            for m in c["messages"]
        ]
        message_ids += ids
        if c["summary"] is not None:
            conn.execute(
                "UPDATE conversations SET summary = ?, summary_upto = ? WHERE id = ?",
                [_gated(c["summary"]), ids[-1] if ids else None, cid],
            )
    mids: list[int] = []
    for m in spec["memories"]:
        conv, source = m["conversation"], m["source_message"]
        mid = store.add_memory(
            m["content"],
            kind=m["kind"],
            source=_gated(m["source"]).strip() or "x",
            importance=m["importance"],
            confidence=m["confidence"],
            created_at=m["at"],
            conversation=convs[conv] if conv is not None and conv < len(convs) else None,
            source_message_id=message_ids[source]
            if source is not None and source < len(message_ids)
            else None,
            external_id=_gated(m["external_id"]),
            speaker=_gated(m["speaker"]),
            metadata=_gated(m["metadata"]),
        )
        conn.execute(
            "UPDATE memories SET use_count = ?, last_used_at = ?, expires_at = ? WHERE id = ?",
            [m["use_count"], m["last_used_at"], m["expires_at"], mid],
        )
        mids.append(mid)
    for path, size, mtime, chunks in spec["files"]:
        conn.execute(
            "INSERT INTO documents(profile, path, format, hash, size, mtime, chunks, chunker, "
            "added_at, updated_at) VALUES (?, ?, 'markdown', 'ab12', ?, ?, ?, 'v1:400:50', "
            "'2024-01-01T00:00:00+00:00', '2024-01-02T00:00:00+00:00')",
            [store.profile, _gated(path), size, mtime, chunks],
        )
    for old, new in spec["supersede"]:
        if old < len(mids) and new < len(mids) and old != new:
            if store.get(mids[old]).superseded_by is None:
                store.supersede(mids[old], mids[new])


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=store_specs)
def test_export_import_export_is_the_identity(tmp_path: Path, spec: dict[str, Any]) -> None:
    run = uuid.uuid4().hex
    with MemoryStore.open(tmp_path / f"{run}-a.db") as a:
        build(a, spec)
        first = _export(a)
        second = round_trip(a, tmp_path, f"{run}-b.db")
    assert normalised(second) == normalised(first)
