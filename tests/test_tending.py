"""Tending ("sleep"): use strengthens, near-duplicates merge, stale facts retire,
dropped summaries are folded again; a dry run changes nothing, and one undo
(`/undo`, `mem undo`, Memory.undo) reverts a whole run."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pexpect
import pytest
from repl_harness import spawn

from memory import Memory, MemoryStore
from memory.assistant.sleep import run, tend_in_background
from memory.assistant.turn import Assistant, Settings
from memory.config import Config
from memory.lifecycle import tending
from memory.lifecycle.tending_plan import IMPORTANCE_CAP
from memory.retrieval.search import find


def _export(store: MemoryStore) -> str:
    out = io.StringIO()
    Memory(store).export(out)  # (a Memory used as a context manager would close the store)
    return out.getvalue()


def _fact(store: MemoryStore, text: str, **fields: Any) -> int:
    """A fact written as is (past consolidation, as an import or a second
    process could), so duplicates and contradictions can exist."""
    return store.add_memory(text, kind="fact", **fields)


def _current(store: MemoryStore) -> list[str]:
    return sorted(m.content for m in store.list_memories(kind="fact"))


def _no_tending_threads() -> None:
    import threading

    for t in threading.enumerate():
        if t.name == "mem-tending":
            t.join(30)


# ------------------------------------------------------------------ use
def test_a_fact_used_in_ten_turns_outranks_an_equal_unused_one(store: MemoryStore) -> None:
    about = {
        _fact(store, "The dentist appointment is on Friday"): "dentist appointment",
        _fact(store, "The book club meeting is on Friday"): "book club meeting",
    }
    for n in range(45):  # newer facts fill the profile block: the two are found by search
        _fact(store, f"Filler note number {n} mentions a kiwi{n} and a lemon{n}")
    before = [h.id for h in find(store, "what is on Friday?", limit=2)]
    assert sorted(before) == sorted(about)
    # The one that ranks second while neither is used is the one the turns use.
    target = before[1]
    settings = Settings(model=None, budget=4000, extraction=False, memory="buffer")
    assistant = Assistant(store, settings)
    assistant.open_conversation()
    for _ in range(10):
        prepared = assistant.prepare(f"when is the {about[target]}?")
        assert target in {h.id for h in prepared.prompt.memories_used}
        assistant.after_reply(prepared)  # the uses are counted after the reply
    used, unused = store.get(target), store.get(before[0])
    assert used.use_count == 10 and used.last_used_at
    assert unused.use_count < used.use_count
    after = [h.id for h in find(store, "what is on Friday?", limit=2)]
    assert after == [target, before[0]]


def test_mem_search_counts_no_use(store: MemoryStore) -> None:
    mid = _fact(store, "The user keeps bees")
    find(store, "bees")
    assert store.get(mid).use_count == 0


def test_strengthen_follows_use_with_a_cap_and_undo_restores(store: MemoryStore) -> None:
    mid = _fact(store, "The user keeps bees", importance=0.5)
    rare = _fact(store, "The user owns a kayak", importance=0.5)
    for _ in range(10):
        store.touch([mid])
    store.touch([rare])  # once is not yet use
    report = run(store, apply=True)
    assert [(a.action, a.memory_id) for a in report.changes] == [("strengthen", mid)]
    raised = store.get(mid)
    assert 0.5 < raised.importance <= IMPORTANCE_CAP
    assert raised.metadata["base_importance"] == 0.5
    assert store.get(rare).importance == 0.5
    assert run(store, apply=False).changes == []  # a second run: nothing new
    assert Memory(store).undo() == ["~ restored importance 0.50: The user keeps bees"]
    back = store.get(mid)
    assert back.importance == 0.5 and "base_importance" not in back.metadata


def test_importance_never_passes_the_cap(store: MemoryStore) -> None:
    mid = _fact(store, "The user keeps bees", importance=0.5)
    store.backend.restore_times(
        store.scope, mid, tending_times(use_count=10**9, last_used_at="2030-01-01T00:00:00+00:00")
    )
    run(store, apply=True)
    assert store.get(mid).importance == IMPORTANCE_CAP


def tending_times(**fields: Any) -> Any:
    from memory.storage.transfer import MemoryTimes

    return MemoryTimes(**fields)


# ---------------------------------------------------------------- merge
def test_tend_merges_near_duplicates_and_mem_undo_restores_both(
    cli: Any, store: MemoryStore, mem_home: Path
) -> None:
    first = _fact(store, "The user's sister Anna lives in Berlin.", importance=0.7)
    second = _fact(store, "the user's sister anna lives in berlin")
    other = _fact(store, "The user's brother Tom lives in Oslo.")
    exported = _export(store)
    plan = cli.json("tend")
    assert plan["applied"] is False
    assert [(a["action"], a["id"], a["other_id"]) for a in plan["actions"]] == [
        ("merge", second, first)
    ]
    assert _export(store) == exported  # the dry run changed nothing
    out = cli("tend", "--report").stdout
    assert f"merge #{second} into #{first}" in out and "mem tend --yes" in out
    assert _export(store) == exported
    done = cli("tend", "--yes").stdout
    assert "Tended: 1 merge" in done
    merged = store.get(second)
    assert merged.superseded_by == first  # kept, marked: lineage stays
    assert _current(store) == sorted([store.get(first).content, store.get(other).content])
    events = [e.event for e in store.history(second)]
    assert events[-1] == "supersede"
    undone = cli.json("undo")["undone"]
    assert undone == ["~ restored: the user's sister anna lives in berlin"]
    assert len(_current(store)) == 3


def test_repl_undo_restores_a_merge(cli: Any, store: MemoryStore, mem_home: Path) -> None:
    a = _fact(store, "The user takes the 8:15 train to work")
    b = _fact(store, "The user takes the 8:15 train to work!")
    store.close()
    cli("tend", "--yes")
    child = spawn(mem_home, {"MEM_NO_LOCAL_MODEL": "1"}, "chat")
    child.sendline("/undo")
    child.expect_exact("~ restored: The user takes the 8:15 train to work")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    with MemoryStore.open(mem_home / "mem.db") as again:
        assert {m.id for m in again.list_memories(kind="fact")} == {a, b}


def test_merge_keeps_the_richer_and_the_higher_importance(store: MemoryStore) -> None:
    short = _fact(store, "The user likes hiking in the Alps in summer", importance=0.9)
    rich = _fact(store, "The user likes hiking in the Alps in summer with friends")
    report = run(store, apply=True)
    assert [(a.memory_id, a.other_id) for a in report.changes] == [(short, rich)]
    assert store.get(rich).importance == 0.9
    assert len(Memory(store).undo()) == 2
    assert store.get(rich).importance == 0.5 and store.get(short).active


def test_what_is_not_a_duplicate_stays(store: MemoryStore) -> None:
    _fact(store, "I like tea")
    _fact(store, "I don't like tea")
    _fact(store, "The user lives in Paris", metadata={"slot": "location", "value": "Paris"})
    _fact(store, "The user's city is Lyon")
    _fact(store, "Remember the milk", source="fact-key")
    _fact(store, "Remember the milk", source="fact-key")
    assert [a for a in run(store).changes if a.action == "merge"] == []


def test_merge_scales_past_pairwise(store: MemoryStore) -> None:
    """Prefix filtering: 600 facts sharing common words take no pairwise pass."""
    for n in range(600):
        _fact(store, f"The user visited museum{n} in city{n} with family")
    _fact(store, "The user visited museum7 in city7 with family")
    merges = [a for a in run(store).changes if a.action == "merge"]
    assert len(merges) == 1


# ---------------------------------------------------------------- stale
def test_a_missed_contradiction_is_retired_and_undo_restores_it(store: MemoryStore) -> None:
    old = _fact(store, "The user lives in Paris", metadata={"slot": "location", "value": "Paris"},
                created_at="2024-01-01T00:00:00+00:00")  # fmt: skip
    new = _fact(store, "The user moved to Lyon", metadata={"slot": "location", "value": "Lyon"})
    report = run(store, apply=True)
    assert [(a.action, a.memory_id, a.other_id) for a in report.changes] == [("stale", old, new)]
    assert store.get(old).superseded_by == new
    assert Memory(store).undo() == ["~ restored: The user lives in Paris"]
    assert store.get(old).active


# ------------------------------------------------------------ summaries
def test_a_dropped_summary_is_folded_again(store: MemoryStore) -> None:
    conv = store.new_conversation()
    for n in range(8):
        store.log_message(conv, "user", f"Question {n} about the garden shed and its roof.")
        store.log_message(conv, "assistant", f"Answer {n}: paint the shed roof green.")
    config = Config(summary_trigger_tokens=20, window=2)
    report = run(store, config)
    assert [(a.action, a.conversation) for a in report.changes] == [("summary", conv)]
    assert store.summary(conv) == (None, None)  # a plan only
    run(store, config, apply=True)
    summary, upto = store.summary(conv)
    assert summary and "garden shed" in summary and upto is not None
    assert run(store, config).changes == []


def test_an_imported_log_gets_no_summary(store: MemoryStore, tmp_path: Path) -> None:
    import json

    lines = [
        {"conversation": "log", "role": role, "content": f"Line {n} about boats.", "id": f"m{n}"}
        for n in range(20)
        for role in ("user", "assistant")
    ]
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps({**x, "id": x["id"] + x["role"]}) + "\n" for x in lines))
    Memory(store).import_(path)
    assert store.conversations()
    assert run(store, Config(summary_trigger_tokens=20, window=2)).changes == []


# ---------------------------------------------------------- fading, runs
def test_fading_is_reported_and_nothing_is_deleted(store: MemoryStore) -> None:
    old = _fact(store, "The user once owned a fax machine", importance=0.2,
                created_at="2020-01-01T00:00:00+00:00")  # fmt: skip
    report = run(store, apply=True)
    assert [(a.action, a.memory_id) for a in report.actions] == [("fade", old)]
    assert store.get(old).active and report.changes == []  # fading changes nothing


def test_the_dry_run_changes_nothing(store: MemoryStore) -> None:
    _fact(store, "The user plays the cello")
    _fact(store, "the user plays the cello")
    used = _fact(store, "The user keeps bees")
    for _ in range(5):
        store.touch([used])
    _fact(store, "The user works at Acme", metadata={"slot": "employer", "value": "Acme"},
          created_at="2024-01-01T00:00:00+00:00")  # fmt: skip
    _fact(store, "The user works at Initech", metadata={"slot": "employer", "value": "Initech"})
    exported = _export(store)
    mark = store.backend.change_mark(store.scope)
    report = run(store)
    assert {a.action for a in report.changes} == {"merge", "strengthen", "stale"}
    assert _export(store) == exported
    assert store.backend.change_mark(store.scope) == mark
    assert tending.last_run(store) is None


def test_a_chat_tends_in_the_background_at_most_once_a_day(store: MemoryStore) -> None:
    _fact(store, "The user plays the cello")
    dup = _fact(store, "the user plays the cello")
    assistant = Assistant(store, Settings(model=None))
    assistant.start(preload=False, tend=True)
    assert assistant.tending is not None
    assistant.tending.join(60)
    assert store.get(dup).superseded_by is not None
    assert tending.last_run(store) is not None and not tending.due(store)
    assert tend_in_background(store, Config()) is None  # not due again today
    other = Assistant(store, Settings(model=None))
    other.start(preload=False, tend=True)
    assert other.tending is None
    _no_tending_threads()


def test_every_profile_tends_its_own(mem_home: Path) -> None:
    with MemoryStore.open(mem_home / "mem.db", profile="alice") as alice:
        _fact(alice, "Alice plays chess")
        run(alice, apply=True)
        assert tending.last_run(alice) is not None
    with MemoryStore.open(mem_home / "mem.db", profile="bob") as bob:
        _fact(bob, "Bob plays chess")
        assert tending.due(bob)
        assert run(bob).changes == []  # alice's identical fact is not bob's duplicate


@pytest.mark.parametrize("args", [["tend", "--yes", "--report"], ["tend", "-y"]])
def test_tend_on_an_empty_database(cli: Any, args: list[str]) -> None:
    assert "Nothing to tend." in cli(*args).stdout
    assert "Nothing to undo." in cli("undo").stdout


def test_tend_and_undo_on_a_postgresql_server(cli: Any, pg_url: str) -> None:
    from test_engine_postgres import url_of

    url = url_of(pg_url)
    first = cli.json("remember", "The user's sister Ana lives in Lisbon.", "--db", url)["id"]
    second = cli.json("remember", "the user's sister ana lives in lisbon", "--db", url)["id"]
    with Memory.open(url) as mem:
        for _ in range(3):
            mem.store.touch([first])
    plan = cli.json("tend", "--db", url)
    assert {(a["action"], a["id"]) for a in plan["actions"]} == {
        ("merge", second),
        ("strengthen", first),
    }
    cli("tend", "--yes", "--db", url)
    shown = cli.json("show", str(second), "--db", url)
    assert shown["superseded_by"] == first
    assert cli.json("show", str(first), "--db", url)["importance"] > 0.5
    assert len(cli.json("undo", "--db", url)["undone"]) == 2
    assert cli.json("show", str(second), "--db", url)["superseded_by"] is None
    assert cli.json("show", str(first), "--db", url)["importance"] == 0.5


class _Episodes:
    """An episodes module as tending sees it (memory.lifecycle.tending_plan.EpisodeHook)."""

    def __init__(self) -> None:
        self.rebuilt: list[tuple[str | None, str]] = []

    def stale(self, store: MemoryStore) -> list[tending.Action]:
        return [tending.Action("episode", None, "Trip", "a turn was forgotten", conversation="c1")]

    def rebuild(self, store: MemoryStore, action: tending.Action, batch: str) -> bool:
        self.rebuilt.append((action.conversation, batch))
        return True


def test_the_episodes_hook_is_planned_then_applied(store: MemoryStore) -> None:
    from memory.formation.consolidation import DUPLICATES

    hook = _Episodes()
    tenders = tending.Tenders(DUPLICATES, episodes=hook)
    planned = tending.tend(store, tenders)
    assert [a.action for a in planned.changes] == ["episode"] and hook.rebuilt == []
    done = tending.tend(store, tenders, apply=True)
    assert [a.conversation for a in done.changes] == ["c1"]
    assert hook.rebuilt == [("c1", done.batch)]
