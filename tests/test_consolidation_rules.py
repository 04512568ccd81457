"""Consolidation's rules as behaviour: add, ignore a duplicate, update with a
richer statement, supersede a contradiction (same slot, other value or
negation), per profile and kind; receipts say which; undo reverts a whole
batch (written to kill mutation-test survivors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory import MemoryStore
from memory.formation.consolidation import Change, consolidate, new_batch, undo_last
from memory.formation.extraction import Candidate
from memory.retrieval.search import find


def fact(text: str, slot: str | None = None, value: str | None = None, **kw: object) -> Candidate:
    return Candidate(text, slot=slot, value=value, **kw)  # type: ignore[arg-type]


def active(store: MemoryStore) -> list[str]:
    return [m.content for m in store.list_memories()]


def test_add_then_ignore_a_duplicate(store: MemoryStore) -> None:
    first = consolidate(store, fact("The user plays the oboe."))
    assert first.action == "add" and first.receipt() == "+ remembered: The user plays the oboe."
    again = consolidate(store, fact("The user plays the oboe."))
    assert (again.action, again.memory_id) == ("ignore", first.memory_id)
    assert again.receipt() == "= already known: The user plays the oboe."
    fewer = consolidate(store, fact("The user plays oboe."))  # a subset of the words
    assert fewer.action == "ignore"
    assert active(store) == ["The user plays the oboe."]


def test_a_richer_statement_updates_and_keeps_the_higher_importance(store: MemoryStore) -> None:
    old = consolidate(store, fact("The user plays the oboe.", importance=0.9))
    richer = consolidate(store, fact("The user plays the oboe in an orchestra.", importance=0.2))
    assert (richer.action, richer.memory_id) == ("update", old.memory_id)
    assert richer.receipt() == "~ updated: The user plays the oboe in an orchestra."
    assert active(store) == ["The user plays the oboe in an orchestra."]
    assert store.get(old.memory_id).importance == 0.9


def test_an_unrelated_statement_is_added(store: MemoryStore) -> None:
    consolidate(store, fact("The user plays the oboe."))
    other = consolidate(store, fact("The user's sister lives in Porto."))
    assert other.action == "add" and len(active(store)) == 2


def test_same_slot_other_value_supersedes(store: MemoryStore) -> None:
    lyon = consolidate(store, fact("The user lives in Lyon.", "location", "Lyon"))
    paris = consolidate(store, fact("The user moved to Paris.", "location", "Paris"))
    assert paris.action == "supersede" and paris.old_id == lyon.memory_id
    assert paris.receipt() == "~ updated: The user moved to Paris. (was: The user lives in Lyon.)"
    assert paris.to_dict() == {
        "action": "supersede",
        "id": paris.memory_id,
        "text": "The user moved to Paris.",
        "old_id": lyon.memory_id,
        "old_text": "The user lives in Lyon.",
        "redacted": [],
    }
    assert store.get(lyon.memory_id).superseded_by == paris.memory_id
    assert active(store) == ["The user moved to Paris."]
    # The same value again (any case) is known; its negation supersedes.
    assert consolidate(store, fact("The user lives in PARIS.", "location", "paris")).action in (
        "ignore",
        "update",
    )
    gone = consolidate(
        store, fact("The user no longer lives in Paris.", "location", "Paris", negated=True)
    )
    assert gone.action == "supersede" and gone.old_id == paris.memory_id


def test_slots_are_per_kind_and_per_profile(mem_home: Path) -> None:
    path = mem_home / "mem.db"
    with MemoryStore.open(path, profile="bob") as bob:
        consolidate(bob, fact("Bob lives in Oslo.", "location", "Oslo"))
    with MemoryStore.open(path) as store:
        mine = consolidate(store, fact("The user lives in Lyon.", "location", "Lyon"))
        assert mine.action == "add"
        rule = consolidate(
            store,
            Candidate("Answer about Madrid.", kind="instruction", slot="location", value="Madrid"),
        )
        assert rule.action == "add"  # an instruction does not supersede a fact
        assert store.get(mine.memory_id).superseded_by is None
    with MemoryStore.open(path, profile="bob") as bob:
        assert [m.content for m in bob.list_memories()] == ["Bob lives in Oslo."]


def test_redaction_is_in_the_change(store: MemoryStore) -> None:
    change = consolidate(store, fact("The user's wifi password is Sunflower-77."))
    assert "Sunflower-77" not in change.text and change.redacted
    assert change.receipt().endswith(f"(redacted: {', '.join(change.redacted)})")


def test_undo_reverts_the_whole_last_batch(store: MemoryStore) -> None:
    assert undo_last(store) == []
    lyon = consolidate(store, fact("The user lives in Lyon.", "location", "Lyon"))
    oboe = consolidate(store, fact("The user plays the oboe."))
    batch = new_batch()
    moved = consolidate(store, fact("The user moved to Paris.", "location", "Paris"), batch=batch)
    richer = consolidate(store, fact("The user plays the oboe in an orchestra."), batch=batch)
    added = consolidate(store, fact("The user has a cat named Miso."), batch=batch)
    assert [c.action for c in (moved, richer, added)] == ["supersede", "update", "add"]
    lines = undo_last(store)
    assert sorted(lines) == sorted(
        [
            "- removed: The user has a cat named Miso.",
            "~ restored: The user plays the oboe.",
            "- removed: The user moved to Paris.",
            "~ restored: The user lives in Lyon.",
        ]
    )
    assert sorted(active(store)) == ["The user lives in Lyon.", "The user plays the oboe."]
    assert store.get(lyon.memory_id).superseded_by is None
    assert store.get(oboe.memory_id).content == "The user plays the oboe."
    # The next undo takes the batch before (one change each), never the same one twice.
    assert undo_last(store) == ["- removed: The user plays the oboe."]


def test_batches_are_distinct() -> None:
    ids = {new_batch() for _ in range(50)}
    assert len(ids) == 50 and all(len(b) == 12 for b in ids)
    assert Change("add", 1, "x").to_dict()["old_id"] is None


def test_a_new_memory_records_where_it_came_from(store: MemoryStore) -> None:
    conv = store.new_conversation("chat")
    mid = store.log_message(conv, "user", "I am vegan now")
    cand = Candidate("The user is vegan.", slot="diet", value="vegan", confidence=0.8)
    change = consolidate(store, cand, source_message_id=mid, conversation=conv)
    mem = store.get(change.memory_id)
    assert (mem.kind, mem.source, mem.confidence) == ("fact", "extraction", 0.8)
    assert (mem.source_message_id, mem.conversation) == (mid, conv)
    assert mem.metadata.get("slot") == "diet" and mem.metadata.get("value") == "vegan"
    assert "negated" not in mem.metadata
    by_hand = consolidate(store, fact("The user owns a kayak."), actor="user")
    assert store.get(by_hand.memory_id).source == "user"


def test_a_negation_is_kept_and_recognised(store: MemoryStore) -> None:
    cand = fact("The user no longer eats meat.", "diet", "meat", negated=True)
    first = consolidate(store, cand)
    assert store.get(first.memory_id).metadata.get("negated") is True
    assert consolidate(store, cand).action == "ignore"  # the same negation again


def test_a_slot_without_value_is_not_a_contradiction(store: MemoryStore) -> None:
    consolidate(store, fact("The user has a pet.", "pet"))
    again = consolidate(store, fact("The user has a pet.", "pet"))
    assert again.action == "ignore" and len(active(store)) == 1


# ------------------------------------------------ the audit trail of each decision
def test_each_decision_is_audited_with_its_batch_and_message(store: MemoryStore) -> None:
    conv = store.new_conversation("chat")
    said = store.log_message(conv, "user", "I live in Lyon and play the oboe")
    batch = new_batch()
    add = consolidate(store, fact("The user lives in Lyon.", "location", "Lyon"),
                      source_message_id=said, batch=batch)  # fmt: skip
    oboe = consolidate(store, fact("The user plays the oboe.", importance=0.2))
    again = consolidate(
        store, fact("The user plays the oboe."), source_message_id=said, batch=batch
    )
    richer = consolidate(store, fact("The user plays the oboe in a band.", importance=0.9),
                         source_message_id=said, batch=batch)  # fmt: skip
    moved = consolidate(store, fact("The user moved to Paris.", "location", "Paris"),
                        source_message_id=said, batch=batch)  # fmt: skip
    expected = {"batch": batch, "source_message": said}

    [added] = store.history(add.memory_id)[:1]
    assert (added.event, added.actor, added.detail) == (
        "add",
        "extraction",
        {"source": "extraction", **expected},
    )
    ignored = store.history(oboe.memory_id)[1]
    assert (again.action, ignored.event, ignored.actor) == ("ignore", "ignore", "extraction")
    assert (ignored.after, ignored.detail) == ({"content": "The user plays the oboe."}, expected)
    updated = store.history(oboe.memory_id)[2]
    assert (updated.event, updated.actor, updated.detail) == ("update", "extraction", expected)
    assert richer.to_dict() == {
        "action": "update",
        "id": oboe.memory_id,
        "text": "The user plays the oboe in a band.",
        "old_id": oboe.memory_id,
        "old_text": "The user plays the oboe.",
        "redacted": [],
    }
    assert store.get(oboe.memory_id).importance == 0.9  # the higher of the two
    superseded = store.history(add.memory_id)[-1]
    assert (superseded.event, superseded.actor) == ("supersede", "extraction")
    assert superseded.detail == {
        "superseded_by": moved.memory_id,
        "reason": "contradiction",
        **expected,
    }


def test_an_instruction_stays_an_instruction(store: MemoryStore) -> None:
    change = consolidate(store, fact("Always answer in French.", kind="instruction"))
    assert store.get(change.memory_id).kind == "instruction"
    assert [m.content for m in store.list_memories(kind="instruction")] == [
        "Always answer in French."
    ]


def test_a_consolidated_memory_is_found_by_meaning(store: MemoryStore) -> None:
    """Its vector is the stored text's (computed before the write lock)."""
    dog = consolidate(store, fact("The user's dog is called Rex.")).memory_id
    assert dog in [h.id for h in find(store, "canine companion name")]


def test_a_statement_without_content_words_is_a_duplicate_of_itself(store: MemoryStore) -> None:
    first = consolidate(store, fact("It is what it is."))
    again = consolidate(store, fact("It is what it is."))
    assert (first.action, again.action, again.memory_id) == ("add", "ignore", first.memory_id)


def test_the_duplicate_threshold_is_inclusive(store: MemoryStore) -> None:
    """Eight shared words of ten in all (Jaccard 0.8 exactly) is a duplicate."""
    old = consolidate(
        store, fact("Ana grows apples, pears, plums, cherries, figs, quinces and limes.")
    )
    near = consolidate(
        store, fact("Ana grows apples, pears, plums, cherries, figs, quinces and kiwis.")
    )
    assert (near.action, near.memory_id) == ("ignore", old.memory_id)


def test_some_shared_words_are_not_a_richer_statement(store: MemoryStore) -> None:
    """Jaccard over one half, but the old words are not all in the new: a new memory."""
    consolidate(store, fact("Ana grows apples, pears and plums."))
    other = consolidate(store, fact("Ana grows apples, pears and kiwis."))
    assert other.action == "add" and len(active(store)) == 2


def test_a_receipt_names_every_kind_of_secret_redacted(store: MemoryStore) -> None:
    change = consolidate(
        store, fact("The user's key is sk-proj-abcdefghijklmnop1234 and password: Hunter2!x42")
    )
    assert len(change.redacted) == 2
    assert change.receipt().endswith(f"(redacted: {change.redacted[0]}, {change.redacted[1]})")


# ------------------------------------------------------------------- undo
def test_undo_of_a_remembered_fact_removes_it(store: MemoryStore) -> None:
    store.remember("The user likes tea")
    assert undo_last(store) == ["- removed: The user likes tea"]
    assert active(store) == []


def test_undo_is_audited_and_restores_a_findable_text(store: MemoryStore) -> None:
    lyon = consolidate(store, fact("The user lives in Lyon.", "location", "Lyon")).memory_id
    dog = consolidate(store, fact("The user's dog is called Rex.")).memory_id
    consolidate(store, fact("The user's dog is called Rex and is a beagle."))
    batch = new_batch()
    consolidate(store, fact("The user moved to Paris.", "location", "Paris"), batch=batch)
    consolidate(store, fact("The user's dog is called Rex, a beagle from Lyon."), batch=batch)
    assert undo_last(store) == [
        "~ restored: The user's dog is called Rex and is a beagle.",
        "~ restored: The user lives in Lyon.",
        "- removed: The user moved to Paris.",
    ]
    restored = store.history(lyon)[-1]
    assert (restored.event, restored.actor, restored.detail) == ("restore", "undo", {"undo": True})
    assert undo_last(store) == ["~ restored: The user's dog is called Rex."]
    reverted = store.history(dog)[-1]
    assert (reverted.event, reverted.actor, reverted.detail) == ("update", "undo", {"undo": True})
    assert dog in [h.id for h in find(store, "canine companion name")]


def test_the_same_slot_and_value_again_is_audited_with_its_message(store: MemoryStore) -> None:
    conv = store.new_conversation("chat")
    said = store.log_message(conv, "user", "Still in Lyon")
    lyon = consolidate(store, fact("The user lives in Lyon.", "location", "Lyon")).memory_id
    batch = new_batch()
    again = consolidate(
        store,
        fact("The user lives in Lyon.", "location", "lyon"),
        source_message_id=said,
        batch=batch,
    )
    assert (again.action, again.memory_id) == ("ignore", lyon)
    ignored = store.history(lyon)[-1]
    assert (ignored.event, ignored.detail) == ("ignore", {"batch": batch, "source_message": said})


def _score(store: MemoryStore, memory_id: int, query: str) -> float:
    return next(h.score for h in find(store, query) if h.id == memory_id)


def test_a_consolidated_or_restored_memory_ranks_as_if_remembered(tmp_path: Path) -> None:
    """Consolidation embeds the text it stores (and undo the text it restores)
    before taking the write lock: the memory then scores as the same text
    remembered directly."""
    query = "what is the name of my puppy"
    expected = []
    for name, text in (
        ("short", "The user's dog is called Rex."),
        ("long", "The user's dog is called Rex and is a beagle."),
    ):
        with MemoryStore.open(tmp_path / f"{name}.db") as plain:
            expected.append(_score(plain, plain.remember(text).id, query))
    expected_short, expected_long = expected
    with MemoryStore.open(tmp_path / "consolidated.db") as store:
        dog = consolidate(store, fact("The user's dog is called Rex.")).memory_id
        assert _score(store, dog, query) == pytest.approx(expected_short)
        consolidate(store, fact("The user's dog is called Rex and is a beagle."))
        assert _score(store, dog, query) == pytest.approx(expected_long)
        undo_last(store)
        assert _score(store, dog, query) == pytest.approx(expected_short)
