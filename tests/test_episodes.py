"""Episodes (issue 16, point 1): a conversation's ended sessions remembered as events with a
when, a who and a gist; built offline by extraction or by a model (the fake server), found
by search and opened into their best turns, kept in step with forgetting on both backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from memory import Memory
from memory.formation.episodes import extract, sessions
from memory.records import Message

DATA = Path(__file__).parent / "data" / "eval_small"


def msg(i: int, text: str, at: str, speaker: str = "Ana", conv: str = "c") -> Message:
    return Message(i, conv, "user", text, at, speaker=speaker)


def lines(conv: str, day: str, turns: list[tuple[str, str]]) -> list[str]:
    return [
        json.dumps(
            {
                "conversation": conv,
                "role": "user" if who == "Ana" else "assistant",
                "speaker": who,
                "content": text,
                "timestamp": f"{day}T10:00:00",
                "id": f"{conv}-{n}",
            }
        )
        for n, (who, text) in enumerate(turns, start=1)
    ]


TRIP = [
    ("Ana", "Hi Bo, shall we plan the summer trip?"),
    ("Bo", "Yes! I looked at trains to Porto and flights to Lisbon."),
    ("Ana", "The train is greener and the views along the coast are lovely."),
    ("Bo", "OK, we decided: we take the night train to Porto on 3 July."),
    ("Ana", "Great, I will book the couchettes tomorrow."),
]
GARDEN = [
    ("Ana", "The tomatoes in the garden are finally red."),
    ("Bo", "Nice. Should we build a second raised bed for herbs?"),
    ("Ana", "Let's build it with the old fence planks next weekend."),
    ("Bo", "Fine, I'll bring screws and a saw."),
]


@pytest.fixture
def two_months(tmp_path: Path) -> Path:
    path = tmp_path / "chats.jsonl"
    path.write_text(
        "\n".join(lines("trip", "2024-05-02", TRIP) + lines("garden", "2024-06-04", GARDEN)) + "\n"
    )
    return path


def test_sessions_split_at_an_idle_gap() -> None:
    turns = [
        msg(1, "a", "2024-01-01T10:00:00+00:00"),
        msg(2, "b", "2024-01-01T10:30:00+00:00"),
        msg(3, "c", "2024-01-01T15:00:00+00:00"),
    ]
    assert [[m.id for m in g] for g in sessions(turns)] == [[1, 2], [3]]


def test_offline_extraction_holds_every_field_and_is_never_empty() -> None:
    at = "2024-05-02T10:00:00+00:00"
    group = [msg(i, t, at, who) for i, (who, t) in enumerate(TRIP, start=1)]
    ep = extract(group)
    assert ep.title and ep.gist and ep.participants == ["Ana", "Bo"]
    assert (ep.start, ep.end, ep.message_ids) == (at, at, [1, 2, 3, 4, 5])
    assert any("decided" in d for d in ep.decisions)
    assert "Porto" in ep.entities and any("July" in d for d in ep.dates)
    hello = extract([msg(1, "Hi!", at), msg(2, "Hey.", at, "Bo")])
    assert hello.title and hello.gist and "2024-05-02" in hello.content()


def test_decision_question_brings_the_right_episode_with_its_date(two_months: Path) -> None:
    with Memory.open(two_months.parent / "m.db") as mem:
        _, built = mem.import_episodes(two_months)
        assert built.added == 2 and built.by_model == 0
        chat = mem.assistant(settings=mem.config.__class__(model=None, budget=8000))
        prompt = chat.build_prompt("What did we decide about the trip?")
        episodes = [h for h in prompt.memories_used if h.kind == "episode"]
        assert episodes and episodes[0].conversation == "trip"
        system = prompt.messages[0]["content"]
        assert "2024-05-02" in system and "night train to Porto" in system
        assert all(h.conversation != "garden" or h.kind != "episode" for h in episodes[:1])
        garden = chat.build_prompt("What did we decide about the raised bed?")
        first = next(h for h in garden.memories_used if h.kind == "episode")
        assert first.conversation == "garden" and "2024-06-04" in garden.messages[0]["content"]


def test_an_episode_hit_opens_into_its_best_turns(two_months: Path) -> None:
    with Memory.open(two_months.parent / "m.db") as mem:
        mem.import_episodes(two_months)
        hits = mem.search("what did we decide about the train to Porto", conversation="trip")
        ep = next(h for h in hits if h.kind == "episode")
        detail = mem.show(ep.id)
        held = set(ep.metadata["turns"])
        assert held and held <= {m.id for m in mem.list(kind="message", conversation="trip")}
        assert len(detail.turns) == len(TRIP)
        assert all(f"#{t}:" in ep.content for t in held)  # the hit's text holds them
        assert not any(h.id in held for h in hits if h.kind == "message")  # never twice
        assert [t.content for t in detail.turns] == [t for _, t in TRIP]


def test_episodes_answer_questions_about_the_conversations(two_months: Path) -> None:
    """A question about a fact is answered by the turns; one about what was decided,
    discussed or left open, or a search for episodes, brings the episodes too."""
    with Memory.open(two_months.parent / "m.db") as mem:
        mem.import_episodes(two_months)
        assert all(h.kind == "message" for h in mem.search("train to Porto"))
        assert any(h.kind == "episode" for h in mem.search("what did we discuss about Porto"))
        only = mem.search("Porto", kinds=["episode"])
        assert only[0].conversation == "trip" and {h.kind for h in only} == {"episode"}


def test_import_episodes_is_idempotent(two_months: Path) -> None:
    with Memory.open(two_months.parent / "m.db") as mem:
        mem.import_episodes(two_months)
        _, again = mem.import_episodes(two_months)
        assert (again.added, again.kept) == (0, 2)
        assert len(mem.episodes()) == 2 and mem.episodes(conversation="garden")[0].metadata["title"]


def test_an_exported_episode_opens_with_its_turns_in_another_database(
    two_months: Path, tmp_path: Path
) -> None:
    dump = tmp_path / "dump.jsonl"
    with Memory.open(tmp_path / "a.db") as a:
        a.import_episodes(two_months)
        a.export(dump)
    with Memory.open(tmp_path / "b.db") as b:
        b.remember("a fact first, so that ids differ")
        b.import_(dump)
        (ep,) = b.episodes(conversation="garden")
        assert [t.content for t in b.show(ep.id).turns] == [t for _, t in GARDEN]
        assert b.build_episodes().added == 0  # the imported episodes are recognised


def _forget_regenerates(mem: Memory, path: Path) -> None:
    mem.import_episodes(path)
    before = mem.episodes(conversation="trip")[0]
    turn = next(
        m for m in mem.list(kind="message", conversation="trip") if "couchettes" in m.content
    )
    mem.forget([turn.id])
    after = mem.episodes(conversation="trip")
    assert len(after) == 1 and after[0].id != before.id
    assert "couchettes" not in json.dumps(after[0].to_dict())
    assert turn.source_message_id not in after[0].metadata["message_ids"]
    assert len(mem.episodes(conversation="garden")) == 1  # other conversations untouched


def test_forgetting_a_message_regenerates_its_episode(two_months: Path) -> None:
    with Memory.open(two_months.parent / "m.db") as mem:
        _forget_regenerates(mem, two_months)


def test_forgetting_a_message_regenerates_its_episode_on_postgres(
    two_months: Path, pg_url: str
) -> None:
    from test_engine_postgres import url_of

    with Memory.open(url_of(pg_url)) as mem:
        _forget_regenerates(mem, two_months)


def test_a_model_writes_the_episode_and_extraction_covers_its_failure(
    fake_llm: Any, two_months: Path
) -> None:
    answer = {
        "title": "Summer trip by train",
        "gist": ["Ana and Bo chose the night train to Porto for 3 July."],
        "decisions": ["Night train to Porto on 3 July"],
        "open_questions": [],
    }
    fake_llm.enqueue(json.dumps(answer))
    fake_llm.enqueue("not json at all")
    with Memory.open(two_months.parent / "m.db") as mem:
        _, built = mem.import_episodes(two_months, model="openai/gpt-4o-mini")
        assert (built.by_model, built.model_failed, built.added) == (1, 1, 2)
        trip, garden = (mem.episodes(conversation=c)[0] for c in ("trip", "garden"))
        assert trip.metadata["title"] == "Summer trip by train"
        assert trip.metadata["method"] == "model" and trip.metadata["participants"] == ["Ana", "Bo"]
        assert garden.metadata["method"].startswith("extractive") and garden.content
    sent = fake_llm.chat_requests()[0]["messages"][-1]["content"]
    assert "Bo (2024-05-02): Yes! I looked at trains" in sent


def test_a_chat_session_becomes_an_episode_when_it_ends(tmp_path: Path) -> None:
    with Memory.open(tmp_path / "m.db") as mem:
        chat = mem.assistant(settings=mem.config.__class__(model=None, budget=8000))
        conv = chat.open_conversation()
        for text in ("We decided to paint the kitchen green.", "I will buy the paint."):
            mem.store.log_message(conv, "user", text)
        assert mem.episodes() == []
        chat.new_conversation()  # /new ends the conversation
        (ep,) = mem.episodes()
        assert ep.conversation == conv and "kitchen" in ep.content


def test_a_message_after_an_idle_gap_closes_the_session_before_it(tmp_path: Path) -> None:
    from datetime import timedelta

    from memory import timeutil
    from memory.assistant.episodes import close_episodes

    now = timeutil.now()

    def ago(hours: float) -> str:
        return timeutil.to_iso(now - timedelta(hours=hours))

    with Memory.open(tmp_path / "m.db") as mem:
        chat = mem.assistant(settings=mem.config.__class__(model=None, budget=8000))
        conv = chat.open_conversation()
        log = mem.store.log_message
        log(conv, "user", "Let's repaint the shed blue.", created_at=ago(5))
        log(conv, "user", "Agreed, blue it is.", created_at=ago(4.9))
        assert close_episodes(chat) == []  # no message after a gap yet
        log(conv, "user", "Back again: about dinner.", created_at=ago(0))
        (first,) = close_episodes(chat)  # what the next turn's after_reply does
        ep = mem.get(first)  # the session before the gap; the one going on has none
        assert "shed" in ep.content and len(ep.metadata["message_ids"]) == 2
        assert ep.metadata["end"] == ago(4.9)


def test_eval_builds_episodes_at_import() -> None:
    from memory.eval.evaluation import run_eval

    report = run_eval(DATA)
    assert report.episodes and report.to_dict()["episodes"] == report.episodes
    plain = run_eval(DATA, episodes=False)
    assert plain.episodes is None


def test_cli_episodes_lists_and_show_opens_one(cli: Any, two_months: Path) -> None:
    cli("import", str(two_months), "--episodes")
    rows = cli.json("episodes")
    assert [r["conversation"] for r in rows] == ["garden", "trip"]  # newest first
    text = cli("episodes").stdout
    assert "2024-05-02" in text and "Ana, Bo" in text
    shown = cli("show", str(rows[1]["id"])).stdout
    assert "turns (5):" in shown and "couchettes" in shown
    empty = cli("episodes", "--conversation", "garden", "-n", "1", "--json")
    assert len(json.loads(empty.stdout)) == 1
