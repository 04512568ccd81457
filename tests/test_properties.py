"""Property-based tests (hypothesis) over import and search.

- import round-trips any Unicode text (emoji, right-to-left scripts, combining
  marks, newlines, control characters), through mem's own export too;
- a file with one malformed line anywhere is refused with that line's number,
  and nothing of it is imported;
- no query string (FTS5 syntax, quotes, ``*``, ``NEAR``, unbalanced brackets,
  very long text) and no filter value makes search fail other than with a named
  error that says the fix.
"""

from __future__ import annotations

import io
import json
import string
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from memory import MemoryStore
from memory.errors import ImportFormatError, MemError
from memory.lifecycle.transfer import export, import_file
from memory.privacy.secrets_gate import apply as gate_apply
from memory.records import KINDS
from memory.retrieval.search import find

# One store per test function, shared by its examples (hence the health check).
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SAMPLES = [
    "I ❤️ 🐍 and 👩🏽‍💻 (ZWJ sequence)",
    "مرحبا بالعالم — שלום עולם",  # right-to-left
    "\u202eevil override\u202c and \u200f marks",
    "e\u0301 a\u0308 n\u0303 Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǫ̗",  # combining marks
    "line one\nline two\r\nline three\u2028four\u2029five\x85six",
    "tab\tvertical\x0bform\x0cfeed\x1cfile\x1dgroup\x1erecord",
    "  leading and trailing spaces  ",
    '{"not": "json inside"} \\ backslash "quotes" \'single\'',
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 ﬁ ligature ｆｕｌｌｗｉｄｔｈ",
    "\ufeffstarts with a BOM",
]

# Any text SQLite can store: every code point but lone surrogates and NUL.
texts = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=200),
    st.sampled_from(SAMPLES),
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    s = MemoryStore.open(tmp_path / "props.db")
    yield s
    s.close()


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode("utf-8") + b"\n" for r in records)


def _counts(store: MemoryStore) -> tuple[int, int, int]:
    conn = store.conn
    return (
        conn.execute("SELECT count(*) FROM messages").fetchone()[0],
        conn.execute("SELECT count(*) FROM memories").fetchone()[0],
        conn.execute("SELECT count(*) FROM conversations").fetchone()[0],
    )


# ------------------------------------------------------------------ round trip
@SETTINGS
@given(contents=st.lists(texts, min_size=1, max_size=6), speaker=texts)
@example(contents=SAMPLES, speaker="José 🌍")
def test_import_round_trips_any_unicode(
    store: MemoryStore, tmp_path: Path, contents: list[str], speaker: str
) -> None:
    conv = f"rt-{uuid.uuid4().hex}"
    records = [
        {
            "conversation": conv,
            "role": "user" if i % 2 == 0 else "assistant",
            "speaker": speaker,
            "content": text,
            "id": f"m{i}",
        }
        for i, text in enumerate(contents)
    ]
    report = import_file(store, io.BytesIO(_jsonl(records)))
    assert report.messages_added == len(contents)
    stored = store.messages(conv)
    assert [m.content for m in stored] == contents
    assert [m.external_id for m in stored] == [f"m{i}" for i in range(len(contents))]
    assert {m.speaker for m in stored} == {speaker}
    # The same file again adds nothing (idempotent).
    assert import_file(store, io.BytesIO(_jsonl(records))).messages_added == 0
    # And mem's own export imports into a fresh database unchanged.
    out = io.StringIO()
    export(store, out)
    with MemoryStore.open(tmp_path / f"{conv}.db") as other:
        import_file(other, io.BytesIO(out.getvalue().encode("utf-8")))
        assert [m.content for m in other.messages(conv)] == contents


@SETTINGS
@given(content=texts.filter(lambda t: t.strip()), kind=st.sampled_from(["fact", "instruction"]))
def test_memory_lines_round_trip(store: MemoryStore, content: str, kind: str) -> None:
    line = {"type": "memory", "kind": kind, "content": content, "importance": 0.7}
    before = {m.id for m in store.list_memories(kind=kind)}
    import_file(store, io.BytesIO(_jsonl([line])))
    stored = {m.id: m.content for m in store.list_memories(kind=kind)}
    # Memories are stored stripped, through the secret gate (which may redact): the
    # line just imported is there as exactly that text, not some earlier example's.
    expected = gate_apply(content.strip(), "redact").text
    added = [text for i, text in stored.items() if i not in before]
    assert added == [expected] or (not added and expected in stored.values())


# -------------------------------------------------------------- malformed lines
def _valid_line(i: int, conv: str) -> dict[str, Any]:
    return {"conversation": conv, "role": "user", "content": f"valid line {i} ✓", "id": f"v{i}"}


def _break_message(rec: dict[str, Any], how: str, change: Any) -> bytes:
    bad = dict(rec)
    if how == "drop":
        del bad[change]
    else:
        key, value = change
        bad[key] = value
    return json.dumps(bad).encode()  # ensure_ascii: lone surrogates stay \\udXXX escapes


def _is_blank(raw: bytes) -> bool:
    try:
        return not raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False


def _parses_to_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw.decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False


not_strings = st.one_of(
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.booleans(),
)
line_types = ("message", "memory", "conversation")
broken_objects = st.one_of(
    st.tuples(st.just("drop"), st.sampled_from(["conversation", "role", "content"])),
    st.tuples(
        st.just("set"),
        st.tuples(
            st.sampled_from(["conversation", "role", "content", "speaker", "id", "import_key"]),
            not_strings,
        ),
    ),
    st.tuples(st.just("set"), st.tuples(st.just("conversation"), st.sampled_from(["", " \t"]))),
    st.tuples(
        st.just("set"),
        st.tuples(st.just("timestamp"), st.sampled_from(["not a date", "2024-13-45", "12:61"])),
    ),
    st.tuples(
        st.just("set"),
        st.tuples(st.just("type"), st.text(max_size=10).filter(lambda t: t not in line_types)),
    ),
    st.tuples(st.just("set"), st.tuples(st.just("content"), texts.map(lambda t: t + "\x00"))),
    st.tuples(
        st.just("set"),
        st.tuples(st.just("content"), st.sampled_from(["\ud800", "a\udfffb", "\udc00\udc00"])),
    ),
).map(lambda spec: ("object", spec))
broken_raw = st.one_of(
    st.binary(min_size=1, max_size=60).filter(
        lambda b: b"\n" not in b and not _is_blank(b) and not _parses_to_object(b)
    ),
    st.sampled_from(
        [
            b'{"conversation": "c", "role": "user", "content": "cut',
            b"[1, 2, 3]",
            b'"just a string"',
            b"null",
            b"\xff\xfe{}",
            b"{'single': 'quotes'}",
            b"[" * 50_000,
            b'{"content": ' + b"9" * 5_000 + b"}",
            b"{}",
            b'{"type": "memory", "content": "x", "kind": "message"}',
            b'{"type": "memory", "content": "x", "importance": 7}',
            b'{"type": "memory", "content": "x", "confidence": NaN}',
            b'{"type": "conversation", "id": ""}',
            b'{"type": "conversation", "id": "c", "title": ["not", "text"]}',
            b'{"type": "memory", "content": "x", "source": {"a": 1}}',
            b'{"conversation": "c", "role": "user", "content": "x", "timestamp": '
            b'"9999-12-31T23:59:59-14:00"}',
        ]
    ),
).map(lambda raw: ("raw", raw))


@SETTINGS
@given(
    valid_before=st.integers(0, 4),
    valid_after=st.integers(0, 3),
    blank_lines=st.integers(0, 2),
    broken=st.one_of(broken_objects, broken_raw),
)
def test_a_malformed_line_is_named_and_nothing_is_imported(
    store: MemoryStore,
    valid_before: int,
    valid_after: int,
    blank_lines: int,
    broken: tuple[str, Any],
) -> None:
    conv = f"mal-{uuid.uuid4().hex}"
    lines = [json.dumps(_valid_line(i, conv)).encode() for i in range(valid_before)]
    lines += [b""] * blank_lines  # blank lines still count in line numbers
    form, spec = broken
    bad = _break_message(_valid_line(99, conv), *spec) if form == "object" else spec
    lines.append(bad)
    bad_lineno = len(lines)
    lines += [json.dumps(_valid_line(100 + i, conv)).encode() for i in range(valid_after)]
    before = _counts(store)
    with pytest.raises(ImportFormatError) as caught:
        import_file(store, io.BytesIO(b"\n".join(lines) + b"\n"))
    message = str(caught.value)
    assert message.startswith(f"<stdin>:{bad_lineno}: "), message
    assert message.endswith("fix or remove that line (nothing was imported).")
    assert "\n" not in message
    assert _counts(store) == before


# ----------------------------------------------------------------------- search
FTS_SYNTAX = [
    '"', "'", "*", "NEAR", "NEAR(", "AND", "OR", "NOT", "(", ")", ":", "^", "-", "+",
    "{", "}", "[", "]", "\\", "col:", "content:", "rank", "bm25(", "MATCH", "%", "_",
    "'; DROP TABLE memories; --", "\x00", "\u200b", "🙂", "é", "ﬁ",
]  # fmt: skip
queries = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(FTS_SYNTAX), st.text(string.ascii_letters, max_size=8))).map(
        " ".join
    ),
    st.lists(st.sampled_from(FTS_SYNTAX)).map("".join),
    st.text(string.printable, min_size=1000, max_size=3000),
)


@pytest.fixture
def filled(store: MemoryStore) -> MemoryStore:
    conv = store.new_conversation("search props", conversation_id="props-conv")
    for text in SAMPLES + ['he said "NEAR" (AND) * OR', "plain fact about coffee"]:
        store.remember(text)
        store.log_message(conv, "user", text)
    return store


@SETTINGS
@given(query=queries)
@example(query='"unbalanced')
@example(query="NEAR(a b, 5")
@example(query="a AND (b OR")
@example(query="*")
@example(query="x" * 100_000)
def test_search_never_crashes(filled: MemoryStore, query: str) -> None:
    hits = find(filled, query, limit=5)
    assert len(hits) <= 5
    for hit in hits:
        assert isinstance(hit.content, str) and hit.score > 0


# Filter values every caller may rely on (the sampled ones below that parse).
VALID_WHEN = (None, "7d", "2024-05-01", "yesterday", "today", "now", "0001-01-01")
filter_values = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(
        ["7d", "2024-05-01", "yesterday", "today", "now", "10000y", "9999999999d", "1.5w",
         "2024-13-01", "9999-12-31T23:59:59-14:00", "0001-01-01", "-3d", "٣d", "\x00"]
    ),
)  # fmt: skip


@SETTINGS
@given(
    query=queries,
    kinds=st.one_of(st.none(), st.sampled_from(KINDS), st.text(max_size=10)),
    since=filter_values,
    until=filter_values,
    conversation=st.one_of(st.none(), st.just("props-conv"), st.text(max_size=10)),
    limit=st.integers(-3, 50),
    include_inactive=st.booleans(),
)
def test_search_filters_fail_only_with_named_errors(
    filled: MemoryStore,
    query: str,
    kinds: str | None,
    since: str | None,
    until: str | None,
    conversation: str | None,
    limit: int,
    include_inactive: bool,
) -> None:
    try:
        hits = find(
            filled,
            query,
            limit=limit,
            kinds=kinds,
            since=since,
            until=until,
            conversation=conversation,
            include_inactive=include_inactive,
        )
    except MemError as err:  # a named error: one line that says the fix
        message = str(err)
        assert message and "\n" not in message and ":" in message
        # Valid filters must be answered, never refused (a search that always raised
        # a MemError would otherwise pass).
        valid = (
            kinds in (None, *KINDS)
            and since in VALID_WHEN
            and until in VALID_WHEN
            and conversation in (None, "", "props-conv")
            and limit >= 1
        )
        assert not valid, f"valid filters refused: {message}"
        return
    assert len(hits) <= max(limit, 0)
    if kinds in KINDS:
        assert all(h.kind == kinds for h in hits)
    if conversation == "props-conv":
        assert all(h.conversation == "props-conv" for h in hits)
