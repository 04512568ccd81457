"""Forgetting's promises as behaviour: --query matches every word and nothing
else, --older-than only what is older, a bad id forgets nothing, --with-source
takes the message too, each memory is reported once, and the text is gone
from the files (written to kill mutation-test survivors)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from memory import MemoryStore
from memory.errors import NotFoundError, UsageError
from memory.lifecycle.forgetting import forget, select_by_query, select_older_than
from memory.lifecycle.transfer import import_file
from memory.retrieval.search import find


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


def test_query_scrubs_its_words_from_titles_summaries_and_audit_text(store: MemoryStore) -> None:
    """`forget --query` takes the words out of copies without lineage: the
    audit text of other memories, conversation titles and summaries; a
    conversation without those words (or without a title) is left alone."""
    trip = store.new_conversation("Trip with Zorblatt the parrot")
    chat = store.new_conversation("Lyon chat")
    untitled = store.new_conversation()
    first = store.log_message(chat, "user", "hello")
    store.set_summary(chat, "Talked about Zorblatt, the parrot.", first)
    parrot = store.remember("The parrot is called Zorblatt").id
    bird = store.remember("Zorblatt the parrot squawks at night").id
    store.update_memory(bird, "The bird squawks at night")
    tea = store.remember("The user likes tea").id
    assert [m.id for m in select_by_query(store, "Zorblatt parrot")] == [parrot]
    report = forget(store, [parrot], query="Zorblatt parrot")
    assert report.memories == [parrot]
    assert report.titles == [trip] and report.summaries == [chat]
    assert report.events == 2  # the add and the update of the bird
    titles = {c["id"]: c["title"] for c in store.conversations()}
    assert titles == {trip: None, chat: "Lyon chat", untitled: None}
    assert store.summary(chat) == (None, None)
    assert [(e.event, e.before, e.after) for e in store.history(bird)] == [
        ("add", None, None),
        ("update", None, None),
    ]
    assert store.history(tea)[0].after == {"content": "The user likes tea", "kind": "fact"}


def test_query_scrubs_audit_text_beyond_ascii(store: MemoryStore) -> None:
    gone = store.remember("Herr Müller mag Tee").id
    other = store.remember("Müller wohnt in Köln").id
    store.update_memory(other, "Er wohnt in Köln")
    report = forget(store, [gone], query="Müller")
    assert report.events == 2
    assert all(e.before is None and e.after is None for e in store.history(other))


def test_forget_json_names_every_part_of_the_receipt(cli: Any) -> None:
    cli("remember", "The user lives in Lyon")
    report = cli.json("forget", "1", "--yes")
    assert report == {
        "forgotten": [1],
        "messages": [],
        "derived": [],
        "restored": [],
        "summaries": [],
        "titles": [],
        "events": 0,
        "history": 0,
        "scrub_pending": False,
        "notes": [],
    }


def test_query_words_that_are_all_common_still_select(store: MemoryStore) -> None:
    """Stop words are dropped from a query that has other words; a query of
    only stop words (quotes and all) is taken word for word."""
    tea = store.remember("Ana likes tea").id
    the = store.remember("the end").id
    assert [m.id for m in select_by_query(store, "the tea")] == [tea]
    assert [m.id for m in select_by_query(store, '"the"')] == [the]


def _index_row(store: MemoryStore, message_id: int) -> int:
    row = store.conn.execute(
        "SELECT id FROM memories WHERE source_message_id = ? AND kind = 'message'", [message_id]
    ).fetchone()
    return int(row[0])


def test_forgetting_a_message_undoes_what_consolidation_took_from_it(store: MemoryStore) -> None:
    """A memory consolidation updated from a message descends from it and goes
    with it (once, however many ways it descends); a duplicate the message
    only repeated stays, and the audit event quoting the message loses its text."""
    from memory.formation.consolidation import consolidate
    from memory.formation.extraction import Candidate
    from memory.privacy import history

    conv = store.new_conversation("chat")
    said = store.log_message(conv, "user", "I like green tea and black coffee")
    tea = store.remember("The user likes tea", source_message_id=said).id
    coffee = store.remember("The user drinks coffee").id
    kept = store.remember("The user lives in Lyon").id
    assert (
        consolidate(store, Candidate("The user likes green tea"), source_message_id=said).action
        == "update"
    )
    change = consolidate(store, Candidate("The user drinks black coffee"), source_message_id=said)
    assert change.action == "update"
    repeated = store.log_message(conv, "user", "I live in Lyon, as I said")
    for _ in range(2):
        change = consolidate(store, Candidate("The user lives in Lyon"), source_message_id=repeated)
        assert change.action == "ignore"
    where = history.path_for(store.path, store.profile)
    history.append(where, "The user drinks black coffee", "redact")
    history.append(where, "what is the weather", "redact")

    report = forget(store, [_index_row(store, said)])
    assert report.messages == [said]
    assert report.derived == [tea, coffee]
    assert report.history == 1 and history.load(where) == ["what is the weather"]
    [forgot] = [e for e in store.history(coffee) if e.event == "forget"]
    assert forgot.detail == {
        "kind": "fact",
        "source": "user",
        "reason": "lineage",
        "profile": "default",
    }

    report = forget(store, [_index_row(store, repeated)])
    assert report.derived == [] and report.events == 2
    assert [m.id for m in store.list_memories(kind="fact")] == [kept]
    ignored = [e for e in store.history(kept) if e.event == "ignore"]
    assert len(ignored) == 2 and all(e.after is None for e in ignored)


def test_forgetting_the_newer_fact_brings_back_the_older(store: MemoryStore) -> None:
    old = store.remember("The user lives in Lyon").id
    new = store.remember("The user lives in Paris").id
    store.supersede(old, new)
    report = forget(store, [new])
    assert report.restored == [old]
    assert [h.id for h in find(store, "where does the user live")] == [old]
    restore = store.history(old)[-1]
    assert (restore.event, restore.detail) == ("restore", {"forgotten": new})
    gone = store.history(new)[-1]
    assert (gone.event, gone.detail) == (
        "forget",
        {"kind": "fact", "source": "user", "with_source": False, "profile": "default"},
    )


def test_forgetting_both_facts_restores_neither(store: MemoryStore) -> None:
    old = store.remember("The user lives in Lyon").id
    new = store.remember("The user lives in Paris").id
    store.supersede(old, new)
    report = forget(store, [new, old])
    assert report.memories == [new, old] and report.restored == []
    assert store.list_memories(include_inactive=True) == []


def test_with_source_takes_an_unindexed_message_out_of_the_input_history(
    store: MemoryStore,
) -> None:
    from memory.privacy import history

    conv = store.new_conversation("chat")
    said = store.log_message(conv, "user", "my locker code is blue-seven", index=False)
    fact = store.remember("The user's locker code is blue-seven", source_message_id=said).id
    where = history.path_for(store.path, store.profile)
    history.append(where, "my locker code is blue-seven", "redact")
    history.append(where, "what time is it", "redact")
    report = forget(store, [fact], with_source=True)
    assert report.messages == [said] and report.memories == [fact]
    assert report.history == 1 and history.load(where) == ["what time is it"]


def test_an_unreadable_history_is_a_note_that_says_what_to_do(store: MemoryStore) -> None:
    from memory.privacy import history

    where = history.path_for(store.path, store.profile)
    where.mkdir()
    report = forget(store, [store.remember("The user likes tea").id])
    assert report.notes == [
        f"could not scrub the input history {where} (Is a directory): make it writable "
        "and forget again, or delete it"
    ]
