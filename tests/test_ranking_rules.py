"""The ranking rules memory.retrieval.ranking documents, checked one by one with small
hand-made candidates: normalised keyword and vector evidence, neighbour and
session shares, the speaker/time/importance/recency boosts, the answer boost,
and when the vectors bring candidates of their own (written to kill
mutation-test survivors; the rules, not the tuned values, are what is pinned)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from memory.retrieval.query import TimeWindow
from memory.retrieval.ranking import (
    KNN_ROWS,
    Candidate,
    Ranking,
    answer_boosted,
    base_scores,
    boosted,
    structural,
)

NOW = datetime(2024, 6, 1, tzinfo=UTC)
PLAIN = Ranking(importance_weight=0.0, recency_weight=0.0)


def cand(
    mid: int,
    *,
    kind: str = "fact",
    conv: str | None = None,
    at: str = "2024-01-10T10:00:00+00:00",
    speaker: str | None = None,
    importance: float = 0.5,
    lexical: float = 0.0,
    vector: float | None = None,
) -> Candidate:
    c = Candidate(mid, kind, conv, at, speaker, importance)
    c.lexical, c.vector = lexical, vector
    return c


def test_a_session_is_one_conversation_on_one_day() -> None:
    assert cand(1, kind="message", conv="c").session == ("c", "2024-01-10")
    assert cand(2, kind="message").session is None  # no conversation
    assert cand(3, kind="fact", conv="c").session is None  # not a message
    fresh = Candidate(4, "fact", None, "2024-01-10T10:00:00+00:00", None, 0.5)
    assert (fresh.lexical, fresh.vector) == (0.0, None)


def test_base_scores_normalise_each_leg_to_its_best() -> None:
    cands = {1: cand(1, lexical=4.0), 2: cand(2, lexical=1.0), 3: cand(3)}
    base = base_scores(cands, Ranking(keyword_weight=2.0), 0.6)
    assert base == {1: 2.0, 2: 0.5, 3: 0.0}
    vec = {1: cand(1, vector=0.8), 2: cand(2, vector=0.4), 3: cand(3, vector=-0.2)}
    base = base_scores(vec, Ranking(), 0.5)
    assert base[1] == pytest.approx(0.5 + 1e-6 * 1.8)
    assert base[2] == pytest.approx(0.25 + 1e-6 * 1.4)
    # No similarity at all still comes back, after the others, nearest first.
    assert 0 < base[3] < base[2] and base[3] == pytest.approx(1e-6 * 0.8)


def test_both_legs_add_up() -> None:
    cands = {1: cand(1, lexical=2.0, vector=0.5), 2: cand(2, lexical=1.0, vector=1.0)}
    base = base_scores(cands, Ranking(), 0.6)
    assert base[1] == pytest.approx(1.0 + 0.3 + 1e-6 * 1.5)
    assert base[2] == pytest.approx(0.5 + 0.6 + 1e-6 * 2.0)


def test_neighbours_and_sessions_share_a_turns_score() -> None:
    day = "2024-01-10T10:00:00+00:00"
    cands = {i: cand(i, kind="message", conv="c", at=day) for i in (1, 2, 3)}
    cands[4] = cand(4, kind="message", conv="c", at="2024-01-11T10:00:00+00:00")
    base = {1: 1.0, 2: 0.0, 3: 0.0, 4: 0.5}
    r = Ranking(neighbour_weight=0.6, neighbour_decay=0.5, session_weight=0.5)
    out = structural(cands, base, {1: [(2, 1), (3, 2)]}, r)
    assert out[1] == pytest.approx(1.0 + 0.5 * 1.0)  # its own session is the best
    assert out[2] == pytest.approx(0.6 * 1.0 + 0.5)  # distance 1: the whole score
    assert out[3] == pytest.approx(0.6 * 0.5 + 0.5)  # distance 2: decayed once
    assert out[4] == pytest.approx(0.5 + 0.5 * 0.5)  # another day, another session
    # An anchor without score spreads nothing.
    quiet = structural(cands, {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0}, {1: [(2, 1)]}, r)
    assert quiet[2] == 0.0


def test_the_strongest_neighbour_wins_not_the_sum() -> None:
    cands = {i: cand(i, kind="message", conv="c") for i in (1, 2, 3)}
    r = Ranking(neighbour_weight=1.0, neighbour_decay=1.0, session_weight=0.0)
    out = structural(cands, {1: 0.4, 2: 0.0, 3: 0.8}, {1: [(2, 1)], 3: [(2, 1)]}, r)
    assert out[2] == pytest.approx(0.8)


def test_speaker_boost_needs_exactly_one_person() -> None:
    cands = {1: cand(1, speaker="Ana"), 2: cand(2, speaker="Bo")}
    scores = {1: 1.0, 2: 1.0}
    r = Ranking(speaker_boost=1.0, importance_weight=0.0, recency_weight=0.0)
    one = boosted(cands, scores, r, asked=frozenset({"ana"}), now=NOW)
    assert one == {1: 2.0, 2: 1.0}
    both = boosted(cands, scores, r, asked=frozenset({"ana", "bo"}), now=NOW)
    assert both == {1: 1.0, 2: 1.0}


def test_time_boost_inside_the_named_period() -> None:
    window = TimeWindow(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC), "month")
    cands = {1: cand(1, at="2024-01-10T10:00:00+00:00"), 2: cand(2, at="2023-05-10T10:00:00+00:00")}
    out = boosted(cands, {1: 1.0, 2: 1.0}, Ranking(time_boost=1.0, importance_weight=0.0,
                  recency_weight=0.0), when=window, now=NOW)  # fmt: skip
    assert out == {1: 2.0, 2: 1.0}


def test_importance_and_recency_nudge() -> None:
    cands = {
        1: cand(1, importance=1.0),
        2: cand(2, importance=0.5),
        3: cand(3, importance=0.0),
    }
    out = boosted(cands, dict.fromkeys(cands, 1.0), Ranking(importance_weight=0.3,
                  recency_weight=0.0), now=NOW)  # fmt: skip
    assert out[1] == pytest.approx(1.15) and out[2] == 1.0 and out[3] == pytest.approx(0.85)
    now = datetime(2024, 1, 10, 10, tzinfo=UTC) + timedelta(days=30)
    r = Ranking(importance_weight=0.0, recency_weight=0.2, half_life_days=30.0)
    aged = boosted({1: cand(1)}, {1: 1.0}, r, now=now)
    assert aged[1] == pytest.approx(1.0 + 0.2 * 0.5)  # one half-life: half the nudge
    new = boosted({1: cand(1)}, {1: 1.0}, r, now=datetime(2024, 1, 10, 10, tzinfo=UTC))
    assert new[1] == pytest.approx(1.2)


def test_answer_boost_lifts_answer_shaped_text() -> None:
    out = answer_boosted(
        {1: 1.0, 2: 1.0, 3: 2.0}, {1: "at 7 pm", 2: "later"}, re.compile(r"\d"), 0.4
    )
    assert out == {1: pytest.approx(1.4), 2: 1.0, 3: 2.0}


def test_vector_share_and_when_the_vectors_search() -> None:
    assert Ranking().vector_share("hash-256") == 0.1
    assert Ranking().vector_share("minilm-static-256") == 0.6
    assert Ranking(vector_weight=0.3).vector_share("hash-256") == 0.3
    r = Ranking()
    assert r.wants_nearest("hash-256", keyword_hits=3, limit=10)  # the words found too little
    assert not r.wants_nearest("hash-256", keyword_hits=10, limit=10)
    assert r.wants_nearest("minilm-static-256", 10, 10, scan_rows=KNN_ROWS)
    assert not r.wants_nearest("minilm-static-256", 10, 10, scan_rows=KNN_ROWS + 1)
    assert not Ranking(nearest=False).wants_nearest("minilm-static-256", 0, 10)
    assert Ranking(nearest=True).wants_nearest("hash-256", 50, 10, scan_rows=10**9)


def test_edges_empty_missing_and_unscored() -> None:
    c = Candidate(7, "message", "c", "2024-01-10T10:00:00+00:00", "Ana", 0.5)
    assert (c.id, c.conversation, c.speaker, c.importance) == (7, "c", "Ana", 0.5)
    assert base_scores({}, Ranking(), 0.6) == {}
    # The best vector sets the scale even when others have none.
    base = base_scores({1: cand(1), 2: cand(2, vector=0.5)}, Ranking(), 0.6)
    assert base[2] == pytest.approx(0.6 + 1e-6 * 1.5) and base[1] == 0.0
    # A candidate missing from ``base`` counts as unscored.
    cands = {1: cand(1, kind="message", conv="c"), 2: cand(2)}
    out = structural(cands, {1: 1.0}, {}, Ranking(neighbour_weight=0.6, session_weight=0.5))
    assert out == {1: pytest.approx(1.5), 2: 0.0}


def test_an_unscored_anchor_does_not_stop_the_others() -> None:
    cands = {i: cand(i, kind="message", conv="c") for i in (1, 2, 3)}
    r = Ranking(neighbour_weight=1.0, neighbour_decay=1.0, session_weight=0.0)
    out = structural(cands, {1: 0.0, 2: 0.0, 3: 0.8}, {1: [(2, 1)], 3: [(2, 1)]}, r)
    assert out[2] == pytest.approx(0.8)


def test_session_share_is_the_best_turn_normalised_to_the_best_session() -> None:
    a, b = "2024-01-10T10:00:00+00:00", "2024-01-11T10:00:00+00:00"
    cands = {
        1: cand(1, kind="message", conv="c", at=a),
        2: cand(2, kind="message", conv="c", at=a),
        3: cand(3, kind="message", conv="c", at=b),
    }
    r = Ranking(neighbour_weight=0.0, session_weight=1.0)
    out = structural(cands, {1: 0.5, 2: 0.25, 3: 0.4}, {}, r)
    assert out[1] == pytest.approx(0.5 + 1.0) and out[2] == pytest.approx(0.25 + 1.0)
    assert out[3] == pytest.approx(0.4 + 0.8)


def test_zero_half_life_means_no_recency_nudge() -> None:
    r = Ranking(importance_weight=0.0, recency_weight=0.2, half_life_days=0.0)
    day_old = datetime(2024, 1, 11, 10, tzinfo=UTC)
    assert boosted({1: cand(1)}, {1: 1.0}, r, now=day_old)[1] == pytest.approx(1.0)


def test_answer_boost_needs_the_text() -> None:
    out = answer_boosted({1: 1.0, 2: 1.0}, {1: "some text"}, re.compile(r"."), 0.5)
    assert out == {1: pytest.approx(1.5), 2: 1.0}
