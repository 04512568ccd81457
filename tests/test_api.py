"""The public API (memory/__init__.py): README's "Python API" examples run, every
public name is documented, and each `Memory` verb gives what its command shows."""

from __future__ import annotations

import doctest
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

import memory
from memory import (
    Memory,
    MemoryRecord,
    NotFoundError,
    UsageError,
    assemble_prompt,
    chunk_file,
    extract_facts,
    get_embedder,
    scan_secrets,
)

ROOT = Path(__file__).resolve().parent.parent


def _section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]


def test_readme_python_api_examples_run(fake_llm: Any) -> None:
    fake_llm.enqueue("Noted: you live in Lisbon now.")  # the turn's reply in the example
    code = "\n".join(re.findall(r"```python\n(.*?)\n```", _section(), re.DOTALL))
    test = doctest.DocTestParser().get_doctest(code, {}, "README Python API", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out = io.StringIO()
    runner.run(test, out=out.write)
    assert runner.failures == 0, out.getvalue()
    assert runner.tries >= 15


def test_every_public_name_is_documented() -> None:
    section = _section()
    missing = [name for name in memory.__all__ if f"`{name}`" not in section]
    assert not missing, f"not in README's Python API: {missing}"
    for name in memory.__all__:
        assert getattr(memory, name) is not None


def test_the_record_keeps_its_old_module_name() -> None:
    from memory.records import Memory as Row

    assert MemoryRecord is Row
    assert Memory is not Row


def test_verbs_return_records(tmp_path: Path) -> None:
    with Memory.open(tmp_path / "a.db", profile="ana") as mem:
        first = mem.remember("My dog is called Rex", tags=["pets"])
        second = mem.remember("Always answer in French", kind="instruction")
        assert [m.id for m in mem.list()] == [second.id, first.id]
        assert [m.id for m in mem.list(kind="instruction")] == [second.id]
        assert mem.get(first.id).content == "My dog is called Rex"
        detail = mem.show(first.id)
        assert detail.memory == mem.get(first.id) and detail.source_message is None
        assert [e.event for e in detail.history] == ["add"]
        assert detail.to_dict()["history"][0]["event"] == "add"
        assert mem.history(first.id) == detail.history
        assert mem.stats()["profile"] == "ana"
        assert mem.conversations() == []
        assert [m.id for m in mem.select(query="dog")] == [first.id]
        with pytest.raises(UsageError):
            mem.select()
        out = io.StringIO()
        assert mem.export(out)["memories"] == 2
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert {rec.get("content") for rec in lines} >= {"My dog is called Rex"}
        mem.export(tmp_path / "out.jsonl")
        assert (tmp_path / "out.jsonl").stat().st_mode & 0o777 == 0o600
    with Memory.open(f"sqlite://{tmp_path / 'b.db'}", profile="ana") as other:
        report = other.import_(tmp_path / "out.jsonl")
        assert report.memories_added == 2
        assert other.import_file(tmp_path / "out.jsonl").memories_skipped == 2
        assert other.reindex() == 2
        assert other.prune(retention={}).total == 0


def test_forget_checks_every_id_before_deleting(tmp_path: Path) -> None:
    with Memory.open(tmp_path / "a.db") as mem:
        kept = mem.remember("The spare key is under the pot")
        with pytest.raises(NotFoundError):
            mem.forget([kept.id, kept.id + 100])
        assert mem.get(kept.id).content == "The spare key is under the pot"
        assert mem.undo() == [f"- removed: {kept.content}"]
        assert mem.list() == []


def test_documents_through_the_facade(tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Boat\n\nThe ferry leaves at nine.\n\n# Train\n\nThe train is late.\n")
    with Memory.open(tmp_path / "a.db", profile="system") as mem:
        report = mem.add([notes])
        assert report.new == 1 and report.chunks_added == 2
        assert [d.path for d in mem.docs()] == [str(notes)]
        assert mem.search("ferry", kinds="document")[0].content.endswith("nine.")
    assert [c.heading for c in chunk_file(notes)] == ["Boat", "Train"]
    with pytest.raises(NotFoundError):
        chunk_file(tmp_path / "missing.md")


def test_unsupported_url_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="sqlite:///PATH or postgresql://") as err:
        Memory.open("mysql://me:s3cret@localhost/mem")
    assert "s3cret" not in str(err.value)


def test_assistant_from_a_memory(fake_llm: Any, tmp_path: Path) -> None:
    fake_llm.enqueue("Hello Ana.")
    with Memory.open(tmp_path / "a.db") as mem:
        assistant = mem.assistant("gpt-4o-mini")
        assert assistant.store is mem.store and assistant.settings.model == "gpt-4o-mini"
        result = assistant.turn("Hi, I am Ana")
        assert result.reply == "Hello Ana."
        assert [c["id"] for c in mem.conversations()] == [result.conversation]


def test_stateless_functions_need_no_database(mem_home: Path) -> None:
    facts = extract_facts("My sister is called Ana and my key is sk-proj-AbCdEf0123456789AbCdEf01")
    assert facts and all("sk-proj" not in c.text for c in facts)
    assert scan_secrets("nothing secret here").findings == []
    prompt = assemble_prompt("Where do I live?", budget=2000, reserve=500)
    assert [m["role"] for m in prompt.messages] == ["system", "user"]
    assert prompt.total_tokens <= 1500
    embedder = get_embedder()
    assert len(embedder.embed(["hello"])[0]) == embedder.dim
    assert not list(mem_home.iterdir())  # no database was created


# ------------------------------------------- what the CLI once did by hand
def test_start_applies_retention_and_opens_the_conversation(tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl"
    line = {"conversation": "c", "role": "user", "content": "kites", "id": "1"}
    old.write_text(json.dumps(line | {"timestamp": "2001-01-01T00:00:00"}) + "\n")
    config = memory.Config(retention={"message": "30d"})
    with Memory.open(tmp_path / "a.db", config=config) as mem:
        mem.import_(old)
        assistant = mem.assistant(settings=config)
        report = assistant.start(resume=True)
        assert report is not None and report.counts == {"message": 1}
        assert assistant.conversation == "c"  # resumed: retention kept the conversation
        assert mem.list(kind="message") == []
        with pytest.raises(memory.NoModelError):
            assistant.start(need_model=True)


def test_turn_keeps_a_reply_cut_short_by_its_reader(fake_llm: Any, tmp_path: Path) -> None:
    fake_llm.enqueue("one two three four", chunk_size=4)
    seen: list[str] = []

    def reader(chunk: str) -> None:
        seen.append(chunk)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with Memory.open(tmp_path / "a.db") as mem:
        assistant = mem.assistant("gpt-4o-mini")
        with pytest.raises(KeyboardInterrupt):
            assistant.turn("Count for me", on_chunk=reader)
        logged = mem.list(kind="message")
    assert [m.content for m in logged] == ["".join(seen).strip(), "Count for me"]


def test_formation_in_the_background_uses_its_own_connection(fake_llm: Any, tmp_path: Path) -> None:
    fake_llm.enqueue("Nice.")
    with Memory.open(tmp_path / "a.db") as mem:
        assistant = mem.assistant("gpt-4o-mini")
        prepared = assistant.prepare("My sister is called Ana")
        assert "".join(assistant.stream_reply(prepared, [])) == "Nice."
        done: list[Any] = []
        assistant.after_reply_in_background(prepared, done.append, done.append).join(30)
        added = [c.text for c in done[0] if c.action == "add"]
        assert added and all("Ana" in text for text in added)
        assert [m.content for m in mem.list(kind="fact")] == added


def test_input_history_is_gated_and_private(tmp_path: Path) -> None:
    with Memory.open(tmp_path / "a.db", profile="ana") as mem:
        inputs = memory.InputHistory.for_store(mem.store)
        assert inputs.kept and inputs.path == tmp_path / "history-ana"
        entry = inputs.gate("my key is sk-proj-AbCdEf0123456789AbCdEf0123456789xyz")
        assert entry == "my key is [redacted API key]"
        inputs.append(entry)
        assert inputs.load() == [entry]
        assert inputs.path.stat().st_mode & 0o777 == 0o600


def test_the_database_file_without_opening_it(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    assert memory.about(db).built_with is None and not memory.about(db).exists
    assert memory.memory_ids(db) == [] and memory.profile_names(db) == []
    with Memory.open(db, profile="ana") as mem:
        kept = mem.remember("The spare key is under the pot")
        conversation = mem.assistant().open_conversation()
    assert memory.about(db).built_with == "minilm-static-256"
    assert memory.memory_ids(db, "ana") == [str(kept.id)]
    assert memory.conversation_ids(db, "ana") == [conversation]
    assert memory.profile_names(db) == ["ana"]
    with pytest.raises(UsageError, match="not encrypted"):
        memory.decrypt_database(db, lambda: "never asked")
    with pytest.raises(UsageError, match="No database"):
        memory.encrypt_database(tmp_path / "none.db", lambda: "never asked")
    import sqlite3

    named = memory.database_error(sqlite3.OperationalError("database is locked"), db)
    assert isinstance(named, memory.DatabaseBusyError) and str(db) in str(named)
    assert memory.database_error(ValueError("not a driver error")) is None


def test_chat_model_falls_back_to_nothing_without_the_offline_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEM_NO_LOCAL_MODEL", "1")
    monkeypatch.delenv("MEM_MODEL", raising=False)
    assert memory.resolve_chat_model("openai/x", memory.Config()) == ("openai/x", None)
    assert memory.resolve_chat_model(None, memory.Config()) == (None, None)
