"""Prompt assembly: priorities, whole items only, layout, stable prefix."""

from __future__ import annotations

import pytest

from memory import MemoryStore
from memory.assistant.budget import assemble, fit_memories, render_hit
from memory.assistant.turn import Assistant, Settings
from memory.errors import UsageError
from memory.models.tokens import counter
from memory.records import Hit, Memory, Message

count = counter(None)


def mem(i: int, text: str, kind: str = "fact", importance: float = 0.5) -> Memory:
    return Memory(
        i,
        "default",
        kind,
        text,
        "user",
        importance,
        1.0,
        "2024-01-01T00:00:00+00:00",
        "2024-01-01T00:00:00+00:00",
    )


def hit(i: int, text: str, score: float) -> Hit:
    return Hit(
        i,
        "message",
        text,
        score,
        "2024-02-03T00:00:00+00:00",
        "c1",
        i,
        f"D1:{i}",
        "default",
        "message:user",
        "Ana",
    )


def msg(i: int, role: str, text: str) -> Message:
    return Message(i, "c9", role, text, "2024-03-01T00:00:00+00:00")


def test_layout_and_parts() -> None:
    prompt = assemble(
        current="What should I cook?",
        count=count,
        budget=4000,
        reserve=500,
        instructions=[mem(1, "Answer in bullet points", "instruction")],
        profile=[mem(2, "The user is vegetarian")],
        retrieved=[hit(3, "I loved the lentil soup", 0.03)],
        summary="We talked about recipes.",
        recent=[msg(10, "user", "Hi"), msg(11, "assistant", "Hello!")],
    )
    system = prompt.messages[0]["content"]
    assert system.index("Answer in bullet points") < system.index("The user is vegetarian")
    assert system.index("The user is vegetarian") < system.index("lentil soup")
    assert system.index("lentil soup") < system.index("We talked about recipes.")
    assert [m["content"] for m in prompt.messages[1:]] == ["Hi", "Hello!", "What should I cook?"]
    assert "### Conversation c1\n#### 2024-02-03\n- Ana #3: I loved the lentil soup" in system
    names = [p.name for p in prompt.parts]
    assert names == ["instructions", "memories", "summary", "recent", "message"]
    assert all(p.tokens > 0 for p in prompt.parts)
    assert prompt.total_tokens <= 4000 - 500


def test_tight_budget_drops_whole_items_lowest_score_first() -> None:
    retrieved = [hit(i, f"memory number {i} " + "word " * 40, 1.0 / i) for i in range(1, 30)]
    recent = [msg(100 + i, "user", f"turn {i} " + "blah " * 60) for i in range(20)]
    prompt = assemble(
        current="question?",
        count=count,
        budget=1500,
        reserve=300,
        retrieved=retrieved,
        recent=recent,
        summary="S " * 400,
    )
    used = [h.id for h in prompt.memories_used]
    assert used == sorted(used) and used[0] == 1  # best first, a prefix of the ranking
    assert prompt.dropped["memories"] > 0 and prompt.dropped["recent"] > 0
    assert prompt.total_tokens <= 1500 - 300
    system = prompt.messages[0]["content"]
    for h in prompt.memories_used:  # never cut mid-item
        assert render_hit(h) in system
    kept = [m["content"] for m in prompt.messages[1:-1]]
    assert kept == [m.content for m in recent[-len(kept) :]]  # newest turns, whole


def test_memories_are_grouped_by_session_in_time_order() -> None:
    """Best first decides what fits; the section then reads conversation by conversation
    and session by session, oldest first, each heading once, facts and documents first."""

    def said(i: int, day: str, conv: str = "c1") -> Hit:
        h = hit(i, f"turn {i}", 1.0 / i)
        h.created_at = f"2024-02-{day}T10:00:00+00:00"
        h.conversation = conv
        return h

    fact = Hit(
        9,
        "fact",
        "The user is vegetarian",
        0.5,
        "2024-01-01T00:00:00+00:00",
        None,
        None,
        None,
        "default",
        "user",
    )
    hits = [said(5, "09"), fact, said(2, "03"), said(7, "09"), said(3, "01", "c2")]
    kept, lines, skipped = fit_memories(hits, count, 10_000)
    assert kept == hits and skipped == 0
    assert lines == [
        "- [2024-01-01 · fact #9] The user is vegetarian",
        "### Conversation c2",
        "#### 2024-02-01",
        "- Ana #3: turn 3",
        "### Conversation c1",
        "#### 2024-02-03",
        "- Ana #2: turn 2",
        "#### 2024-02-09",
        "- Ana #5: turn 5",
        "- Ana #7: turn 7",
    ]
    # Headings are paid for once: the first line of c1 on the 9th pays for both of its
    # headings, the second line costs only itself, a line of another day of c1 pays only
    # for its day.
    first = sum(count(line) + 1 for line in ("### Conversation c1", "#### 2024-02-09", lines[8]))
    second = count(lines[9]) + 1
    kept, lines, skipped = fit_memories(hits[:1] + hits[3:4], count, first + second)
    assert [h.id for h in kept] == [5, 7] and skipped == 0
    kept, _, skipped = fit_memories(hits[:1] + hits[3:4], count, first)
    assert [h.id for h in kept] == [5] and skipped == 1
    day = count("#### 2024-02-03") + 1 + count("- Ana #2: turn 2") + 1
    kept, _, skipped = fit_memories([hits[0], hits[2]], count, first + day)
    assert [h.id for h in kept] == [5, 2] and skipped == 0


def test_message_too_long_for_the_budget() -> None:
    with pytest.raises(UsageError) as err:
        assemble(current="word " * 2000, count=count, budget=1000, reserve=200)
    assert str(err.value).endswith("shorten the message, or raise --budget.")


def test_stable_prefix_between_turns(store: MemoryStore) -> None:
    store.remember("Answer briefly", kind="instruction")
    store.remember("The user's name is Ana", importance=0.9)
    store.remember("The user likes chess")
    a = Assistant(store, Settings(budget=4000))
    p1 = a.build_prompt("Tell me about chess openings").messages[0]["content"]
    p2 = a.build_prompt("What is my name?").messages[0]["content"]
    cut = p1.index("## What you know about the user")
    profile_end = p1.index("\n\n", cut + 1) if "\n\n##" in p1[cut:] else len(p1)
    assert p1[:profile_end] == p2[:profile_end]
