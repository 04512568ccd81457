"""Forgetting's promises as behaviour: --query matches every word and nothing
else, --older-than only what is older, a bad id forgets nothing, --with-source
takes the message too, each memory is reported once, and the text is gone
from the files (written to kill mutation-test survivors)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from memory import MemoryStore
from memory.errors import NotFoundError, UsageError
from memory.forgetting import forget, select_by_query, select_older_than
from memory.transfer import import_file


def _import(store: MemoryStore, *lines: dict[str, object]) -> None:
    import_file(store, io.BytesIO("\n".join(json.dumps(x) for x in lines).encode()))


def test_query_matches_every_word_in_this_profile_only(mem_home: Path) -> None:
    path = mem_home / "mem.db"
    with MemoryStore.open(path, profile="bob") as bob:
        bob.remember("Bob likes green tea")
    with MemoryStore.open(path) as store:
        tea = store.remember("The user likes green tea").id
        store.remember("The user likes black coffee")
        store.remember("Green apples are sour")
        rule = store.remember("Always offer green tea", kind="instruction").id
        assert [m.id for m in select_by_query(store, "green tea")] == [tea, rule]
        assert [m.id for m in select_by_query(store, "green tea", kind="fact")] == [tea]
        assert [m.id for m in select_by_query(store, "tea", kind="instruction")] == [rule]
        assert select_by_query(store, "green tea coffee") == []
        assert select_by_query(store, 'he said "green') == []  # quotes are words, not syntax
        with pytest.raises(UsageError) as err:
            select_by_query(store, "   ")
        assert str(err.value) == "Empty --query: give the words the memories to forget contain."


def test_older_than_selects_only_older_memories(store: MemoryStore) -> None:
    _import(
        store,
        {"type": "memory", "content": "very old fact", "created_at": "2001-01-01T00:00:00Z"},
        {"type": "memory", "kind": "instruction", "content": "old rule",
         "created_at": "2001-01-02T00:00:00Z"},
    )  # fmt: skip
    store.remember("fresh fact")
    old = [m.content for m in select_older_than(store, "30d")]
    assert old == ["very old fact", "old rule"]
    assert [m.content for m in select_older_than(store, "30d", kind="fact")] == ["very old fact"]
    assert select_older_than(store, "1000y") == []


def test_a_bad_id_forgets_nothing(store: MemoryStore) -> None:
    keep = store.remember("keep me").id
    with pytest.raises(NotFoundError, match="nothing was forgotten"):
        forget(store, [keep, keep + 100])
    assert [m.id for m in store.list_memories()] == [keep]
    with pytest.raises(UsageError) as err:
        forget(store, [])
    assert str(err.value) == "Nothing to forget: give memory ids, --query or --older-than."


def test_forget_reports_each_memory_and_message_once(store: MemoryStore) -> None:
    conv = store.new_conversation("chat")
    mid = store.log_message(conv, "user", "I live in Lyon and work at Acme")
    a = store.remember("The user lives in Lyon", source_message_id=mid).id
    b = store.remember("The user works at Acme", source_message_id=mid).id
    report = forget(store, [a, b], with_source=True)
    assert report.messages == [mid]  # two facts, one source message
    assert report.memories[0] == a and b in report.memories
    assert len(report.memories) == len(set(report.memories)) == 3  # a, b, the message's row
    assert store.list_memories() == [] and store.messages(conv) == []


def test_with_source_takes_the_message_and_its_index_row(store: MemoryStore) -> None:
    conv = store.new_conversation("chat")
    mid = store.log_message(conv, "user", "my locker code is blue-seven")
    fact = store.remember("The user's locker code is blue-seven", source_message_id=mid).id
    other = store.log_message(conv, "user", "unrelated message stays")
    report = forget(store, [fact], with_source=True)
    assert report.messages == [mid]
    assert fact in report.memories and len(report.memories) == 2  # the fact and the message
    assert [m.content for m in store.messages(conv)] == ["unrelated message stays"]
    assert other in [m.id for m in store.messages(conv)]
    # Without --with-source the message stays.
    mid2 = store.log_message(conv, "user", "my bike is red")
    fact2 = store.remember("The user's bike is red", source_message_id=mid2).id
    assert forget(store, [fact2]).messages == []
    assert "my bike is red" in [m.content for m in store.messages(conv)]
    assert "my bike is red" in [m.content for m in store.list_memories(kind="message")]


def test_forgotten_text_leaves_the_files(store: MemoryStore, raw_bytes: object) -> None:
    gone = store.remember("canary-peony-3141 is the word").id
    store.remember("another memory")
    forget(store, [gone])
    wal = Path(str(store.path) + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed and truncated
    assert b"canary-peony-3141" not in raw_bytes(store.path)  # type: ignore[operator]
