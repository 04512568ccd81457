"""`mem eval` and memory.eval.evaluation: scoring that mirrors locomo_recall.py, budget recall,
a person's own eval file, and the errors of a missing folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from memory.assistant.budget import heading_cost, render_hit
from memory.errors import EvalDataError
from memory.eval.evaluation import Question, evaluate, hit_ids, load_questions, percentile
from memory.models.tokens import counter
from memory.records import Hit

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "eval_small"
TOOL = ROOT.parent / "shared" / "tools" / "locomo_recall.py"


def hit(mid: int, content: str, ext: str | None = None, **meta: Any) -> Hit:
    return Hit(
        id=mid,
        kind="message",
        content=content,
        score=1.0 / mid,
        created_at="2023-05-08T13:56:00+00:00",
        conversation="c",
        message_id=mid,
        external_id=ext,
        profile="default",
        source="message:user",
        speaker="Ana",
        metadata=meta,
    )


class FakeStore:
    """Just what evaluate() reads from a store: canned hits in a fixed order."""

    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits
        self.path = Path("fake.db")
        self.location = "fake.db"
        self.embedder = type("E", (), {"name": "fake"})()
        self.limits: list[int] = []

    def search(self, query: str, *, limit: int, conversation: str | None = None) -> list[Hit]:
        self.limits.append(limit)
        return self.hits[:limit]

    def list_memories(self, **kwargs: Any) -> list[Any]:
        return []


def question(evidence: tuple[str, ...] = (), expected: tuple[str, ...] = ()) -> Question:
    return Question("q?", "c", evidence, expected, "single-hop", 1)


# ------------------------------------------------------------------------ scoring
def test_recall_mrr_and_category_follow_locomo_scoring() -> None:
    hits = [hit(i, f"turn {i}", f"D1:{i}") for i in range(1, 31)]
    store = FakeStore(hits)
    q1 = question(evidence=("D1:3", " D1:12"))  # ids are stripped, as the tool does
    q2 = Question("q?", "c", ("D1:25",), (), "temporal", 2)
    report = evaluate(store, [q1, q2], budgets=(10_000,), search=store.search)  # type: ignore[arg-type]
    r1, r2 = report.results
    assert r1.recall == {1: 0.0, 5: 0.5, 10: 0.5, 20: 1.0}
    assert r1.reciprocal_rank == pytest.approx(1 / 3)
    assert r2.recall == {1: 0.0, 5: 0.0, 10: 0.0, 20: 0.0}
    assert r2.reciprocal_rank == 0.0  # beyond the top 20: not found
    assert store.limits[0] == 20  # the same depth as locomo_recall.py's --limit
    assert [g.label for g in report.categories] == ["temporal", "single-hop"]
    assert report.overall.recall[20] == 0.5
    assert report.overall.mrr == pytest.approx(1 / 6)
    assert r2.budget_recall == {10_000: 1.0}  # searched deeper for the budget


def test_a_fact_key_counts_every_source_message() -> None:
    key = hit(1, "Ana adopted Rex.", "D1:3", source_external_ids=["D1:3", "D2:4"])
    assert hit_ids(key) == {"D1:3", "D2:4"}
    fake = FakeStore([key])
    report = evaluate(fake, [question(evidence=("D1:3", "D2:4"))], search=fake.search)  # type: ignore[arg-type]
    assert report.results[0].recall[1] == 1.0


def test_expected_text_is_found_case_insensitively() -> None:
    hits = [hit(1, "I work at the  Bakery on Elm Street"), hit(2, "I bake sourdough")]
    q = question(expected=("bakery on elm street", "SOURDOUGH", "croissants"))
    fake = FakeStore(hits)
    result = evaluate(fake, [q], search=fake.search).results[0]  # type: ignore[arg-type]
    assert result.recall[1] == pytest.approx(1 / 3)
    assert result.recall[5] == pytest.approx(2 / 3)
    assert result.reciprocal_rank == 1.0


def test_budget_recall_lays_lines_as_the_prompt_does() -> None:
    count = counter(None)
    long_text = "a long and winding message " * 20
    hits = [
        hit(1, "nothing relevant here", "D1:1"),
        hit(2, long_text, "D1:2"),
        hit(3, "short", "D1:3"),
    ]
    cost = [count(render_hit(h)) + 1 for h in hits]  # the line and its newline
    cost[0] += heading_cost(hits[0], set(), count)[0]  # the first one opens the session
    first_only, skip_second = cost[0], cost[0] + cost[2]
    budgets = (first_only, skip_second, sum(cost))
    q = question(evidence=("D1:2", "D1:3"))
    fake = FakeStore(hits)
    result = evaluate(fake, [q], budgets=budgets, search=fake.search).results[0]  # type: ignore[arg-type]
    # The long line does not fit the middle budget and is skipped; the short one after it fits.
    assert result.budget_recall == {first_only: 0.0, skip_second: 0.5, sum(cost): 1.0}


def test_percentile_interpolates() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert percentile([1.0, 2.0], 0.95) == pytest.approx(1.95)
    assert percentile([], 0.5) == 0.0


def test_load_questions_keeps_what_locomo_scores(tmp_path: Path) -> None:
    questions, skipped = load_questions(DATA / "questions.jsonl")
    assert skipped == 2  # category 5, and one without evidence
    assert [q.category for q in questions] == [
        "single-hop",
        "temporal",
        "multi-hop",
        "open-domain",
        "single-hop",
        "single-hop",
        "other",
        "own",
    ]
    bad = tmp_path / "questions.jsonl"
    bad.write_text('{"question": "ok?", "expected": "x"}\n{"question": 3}\n')
    with pytest.raises(EvalDataError) as err:
        load_questions(bad)
    assert str(err.value) == f'{bad}:2: needs a "question" string; fix or remove that line.'


# ------------------------------------------------------------------------ the command
def test_eval_prints_a_table_and_json(cli: Any) -> None:
    out = cli("eval", str(DATA))
    lines = out.stdout.splitlines()
    assert lines[1].split() == "category n R@1 R@5 R@10 R@20 MRR ≤500 ≤1000 ≤2000".split()
    labels = [line.split()[0] for line in lines[2:9]]
    assert labels == ["multi-hop", "temporal", "open-domain", "single-hop", "other", "own", "all"]
    assert lines[-1] == "R@10 1.000"
    assert re.search(r"^search latency p50 [\d.]+ ms, p95 [\d.]+ ms", out.stdout, re.M)
    assert "whole conversation: " in out.stdout and "2 questions not scored" in out.stdout
    report = cli.json("eval", str(DATA), "--no-episodes")  # the turns' own ranking
    assert report["episodes"] is None
    assert report["questions"] == 8 and report["skipped"] == 2
    # Tiny conversations: every piece of evidence is in the top 20 and within 500 tokens.
    assert report["overall"]["recall"]["20"] == 1.0
    # Order matters, not only membership: shuffled results keep R@20 and lose these.
    assert report["overall"]["recall"]["1"] == 0.75 and report["overall"]["mrr"] == 0.9375
    by_category = {c["category"]: (c["recall"]["1"], c["mrr"]) for c in report["categories"]}
    assert by_category["open-domain"] == (0.0, 0.5) and by_category["single-hop"] == (1.0, 1.0)
    assert report["overall"]["budget_recall"] == {"500": 1.0, "1000": 1.0, "2000": 1.0}
    assert set(report["conversation_tokens"]["by_conversation"]) == {"conv-a", "conv-b"}
    assert 0 < report["conversation_tokens"]["mean"] < 500
    assert report["encoding"] == "cl100k_base" and report["embedder"] == "minilm-static-256"
    assert len(report["results"]) == 8
    assert cli.json("stats")["messages"] == 0  # a temporary database, not the live one


def test_eval_k_and_limit(cli: Any) -> None:
    report = cli.json("eval", str(DATA), "--k", "3", "--limit", "2")
    assert report["ks"] == [1, 3, 5, 10, 20] and report["questions"] == 2
    assert cli("eval", str(DATA), "--limit", "0", code=2).stderr == (
        "Error: Invalid --limit 0: use a whole number of at least 1.\n"
    )
    assert cli("eval", str(DATA), "--k", "0", code=2).stderr == (
        "Error: Invalid --k or budget: use whole numbers of at least 1.\n"
    )


def test_live_eval_matches_the_temporary_one(cli: Any) -> None:
    temporary = cli.json("eval", str(DATA))  # episodes built at import, as --episodes does
    cli("import", str(DATA / "messages.jsonl"), "--episodes")
    live = cli.json("eval", str(DATA), "--live")
    assert live["overall"] == temporary["overall"]
    assert live["categories"] == temporary["categories"]
    assert live["database"].endswith("mem.db")


def test_live_eval_needs_the_conversations(cli: Any) -> None:
    out = cli("eval", str(DATA), "--live", code=3)
    assert out.stderr == (
        "Error: Conversation 'conv-a' (questions.jsonl line 1) is not in the database: "
        "import its messages first (`mem import FILE`), or drop --live.\n"
    )


def test_eval_folder_errors(cli: Any, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    out = cli("eval", str(missing), code=2)
    assert out.stderr == (
        f"Error: No such folder: {missing}; give the folder that holds questions.jsonl "
        "and messages.jsonl.\n"
    )
    afile = tmp_path / "file.jsonl"
    afile.write_text("")
    assert cli("eval", str(afile), code=2).stderr == (
        f"Error: {afile} is not a folder: give the folder that holds questions.jsonl, not a file.\n"
    )
    assert cli("eval", str(tmp_path), code=2).stderr == (
        f"Error: No questions file {tmp_path / 'questions.jsonl'}: write one JSON question a "
        'line there ({"question": ..., "expected": [...]}).\n'
    )
    (tmp_path / "questions.jsonl").write_text('{"question": "q?", "expected": ["x"]}\n')
    assert cli("eval", str(tmp_path), code=2).stderr == (
        f"Error: No messages file {tmp_path / 'messages.jsonl'}: add the conversations to "
        "import there, or use --live to evaluate your own database.\n"
    )
    (tmp_path / "questions.jsonl").write_text("{not json\n")
    assert cli("eval", str(tmp_path), "--live", code=2).stderr == (
        f"Error: {tmp_path / 'questions.jsonl'}:1: not valid JSON; fix or remove that line.\n"
    )


def test_eval_option_conflicts(cli: Any, tmp_path: Path) -> None:
    assert cli("eval", str(DATA), "--db", str(tmp_path / "x.db"), code=2).stderr == (
        "Error: --db names the database for --live: add --live to evaluate it.\n"
    )
    assert cli("eval", str(DATA), "--live", "--extract", code=2).stderr == (
        "Error: --extract indexes a temporary import: run `mem import FILE --extract` on your "
        "database instead of combining it with --live.\n"
    )


def test_own_eval_file_against_the_live_database(cli: Any, tmp_path: Path) -> None:
    cli("remember", "My sister Lena lives in Porto")
    cli("remember", "I am allergic to peanuts")
    (tmp_path / "questions.jsonl").write_text(
        json.dumps({"question": "Where does Lena live?", "expected": ["lives in porto"]})
        + "\n"
        + json.dumps({"question": "What am I allergic to?", "expected": ["PEANUTS"]})
        + "\n"
    )
    report = cli.json("eval", str(tmp_path), "--live")
    assert report["overall"]["recall"]["5"] == 1.0
    assert [g["category"] for g in report["categories"]] == ["other"]


def test_eval_never_imports_litellm(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from cli.main import app\n"
        f"r = CliRunner().invoke(app, ['eval', {str(DATA)!r}, '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
    )
    env = dict(os.environ, MEM_HOME=str(tmp_path))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT, timeout=120)


@pytest.mark.skipif(not TOOL.exists(), reason="../shared/tools/locomo_recall.py is not beside")
def test_agrees_with_locomo_recall(cli: Any, tmp_path: Path) -> None:
    """The acceptance check on the fixture: the same R@k as the shared tool, to 3 decimals."""
    folder = tmp_path / "locomo_format"
    folder.mkdir()
    (folder / "messages.jsonl").write_text((DATA / "messages.jsonl").read_text())
    rows = [json.loads(line) for line in (DATA / "questions.jsonl").read_text().splitlines()]
    (folder / "questions.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows if "evidence" in r and "category" in r)
    )
    mem = Path(sys.executable).with_name("mem")
    env = dict(os.environ, MEM_HOME=str(tmp_path / "home"))
    tool = subprocess.run(
        [sys.executable, str(TOOL), str(folder), "--mem", str(mem)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    ).stdout.splitlines()
    # the tool imports without episodes: compare the same database
    report = cli.json("eval", str(folder), "--k", "10", "--no-episodes")
    ours = " ".join(f"R@{k}={report['overall']['recall'][str(k)]:.3f}" for k in (1, 5, 10, 20))
    assert ours in tool
    by_cat = " ".join(f"{g['category']}={g['recall']['10']:.3f}" for g in report["categories"])
    assert by_cat in tool
    assert tool[-1] == f"R@10 {report['overall']['recall']['10']:.3f}"
