"""In-context examples (memory.assistant.examples): stored as kind ``example``, the
few that resemble a message shown in its prompt, none for an unrelated one; the
schema migrations that admit the kind on SQLite and PostgreSQL; export, forget,
the secret gate and profiles."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from storage_harness import ALICE, BACKENDS, add, row_of, say

from memory import Memory, MemoryStore
from memory.assistant.budget import assemble
from memory.assistant.examples import HEADING, SIMILARITY_FLOOR, ExampleShelf, list_examples
from memory.assistant.turn import Assistant, Settings
from memory.errors import CorruptDatabaseError, SecretRefusedError, UsageError
from memory.storage.sqlite.db import connect
from memory.storage.sqlite.schema import _known_names, _migrations, applied_names, widen_kinds

MODEL = "openai/x"
FRENCH = [
    ("Translate to French: good morning", "Bonjour"),
    ("Translate to French: thank you very much", "Merci beaucoup"),
    ("Translate to French: see you tomorrow", "À demain"),
]
RESEMBLING = "Translate to French: where is the train station?"
UNRELATED = "What did we decide about the garden fence?"


def add_three(mem: Memory) -> list[int]:
    return [mem.add_example(i, o, task="french").id for i, o in FRENCH]


def stream_system(server: Any) -> str:
    """The system message of the last streamed reply request the model received."""
    streamed = [r for r in server.chat_requests() if r.get("stream")]
    return str(streamed[-1]["messages"][0]["content"])


# ------------------------------------------------------------------ the prompt
def test_a_resembling_message_gets_the_examples_an_unrelated_one_none(
    fake_llm: Any, tmp_path: Path
) -> None:
    with Memory.open(tmp_path / "m.db") as mem:
        add_three(mem)
        mem.remember("My garden has a wooden fence")
        assistant = mem.assistant(MODEL)
        fake_llm.enqueue("Où est la gare ?")
        turn = assistant.turn(RESEMBLING)
        system = stream_system(fake_llm)
        assert HEADING in system
        for given, wanted in FRENCH:
            assert f"Input: {given}\nOutput: {wanted}" in system
        # the instruction block: after the base prompt, before the memories
        assert system.index(HEADING) < system.index("Input: Translate")
        assert turn.prompt.part("examples").items == 3
        assert turn.prompt.sections.examples[0][0].startswith("Translate to French")
        # examples are not also shown as retrieved memories
        assert "Memories that may be relevant" not in system.split(HEADING)[0]
        fake_llm.enqueue("You chose the wooden one.")
        turn = assistant.turn(UNRELATED)
        system = stream_system(fake_llm)
        assert HEADING not in system and "Bonjour" not in system
        assert "examples" not in [p.name for p in turn.prompt.parts]


def test_examples_shown_in_a_prompt_count_a_use_for_tending(tmp_path: Path) -> None:
    """An example in the prompt is used as a fact in it is: its use is counted
    after the reply (what tending strengthens), and an unrelated message's
    turn, which shows none, counts none."""
    with Memory.open(tmp_path / "m.db") as mem:
        ids = add_three(mem)
        store = mem.store
        settings = Settings(model=None, budget=4000, extraction=False, memory="buffer")
        assistant = Assistant(store, settings)
        assistant.open_conversation()
        prepared = assistant.prepare(RESEMBLING)
        assert sorted(prepared.prompt.examples_used) == sorted(ids)
        assert all(store.get(i).use_count == 0 for i in ids)  # not before the reply
        assistant.after_reply(prepared)
        assert [store.get(i).use_count for i in ids] == [1, 1, 1]
        prepared = assistant.prepare(UNRELATED)
        assert prepared.prompt.examples_used == []
        assistant.after_reply(prepared)
        assert [store.get(i).use_count for i in ids] == [1, 1, 1]

    # A prompt with no room for them does not show them, so does not use them.
    def words(text: str) -> int:
        return len(text.split())

    section = "an example " * 50
    roomy = assemble(current="hi", count=words, budget=1000, reserve=0,
                     examples=[("in", "out")], examples_text=section, example_ids=[7])  # fmt: skip
    assert roomy.examples_used == [7]
    tight = assemble(current="hi " * 80, count=words, budget=150, reserve=0,
                     examples=[("in", "out")], examples_text=section, example_ids=[7])  # fmt: skip
    assert tight.examples_used == [] and tight.dropped["examples"] == 1


def test_show_prompt_shows_the_examples_through_the_cli(fake_llm: Any, cli: Any) -> None:
    for given, wanted in FRENCH:
        out = cli.json("example", "add", given, wanted, "--task", "french")
        assert (out["input"], out["output"], out["task"]) == (given, wanted, "french")
    listed = cli.json("example", "list", "--task", "french")
    assert [e["input"] for e in listed] == [i for i, _ in reversed(FRENCH)]
    shown = cli.json("ask", "--model", MODEL, "--budget", "4000", "--show-prompt", RESEMBLING)
    assert HEADING in shown["messages"][0]["content"]
    assert {"name": "examples", "tokens": shown["parts"][1]["tokens"], "items": 3} in shown["parts"]
    text = cli("ask", "--model", MODEL, "--budget", "4000", "--show-prompt", RESEMBLING).stdout
    assert "examples" in text and "Output: Merci beaucoup" in text
    other = cli.json("ask", "--model", MODEL, "--budget", "4000", "--show-prompt", UNRELATED)
    assert HEADING not in other["messages"][0]["content"]
    assert "examples" not in [p["name"] for p in other["parts"]]


def test_the_offline_model_reads_them_as_earlier_questions(cli: Any) -> None:
    cli("example", "add", *FRENCH[0])
    shown = cli.json("ask", "--model", "local/gemma-3-270m", "--show-prompt", RESEMBLING)
    assert shown["completion_prompt"].endswith(
        f"Q: {FRENCH[0][0]}\nA: {FRENCH[0][1]}\nQ: {RESEMBLING}\nA:"
    )


def test_examples_keep_to_their_own_budget(tmp_path: Path) -> None:
    with Memory.open(tmp_path / "m.db") as mem:
        for n in range(6):
            mem.add_example(f"Translate to French: where is station {n}?", "Où est la gare ? " * 9)
        small = Assistant(mem.store, Settings(budget=4000, example_tokens=120))
        prompt = small.build_prompt(RESEMBLING)
        assert 1 <= prompt.part("examples").items < 3
        assert prompt.part("examples").tokens <= 120 + 2
        off = Assistant(mem.store, Settings(budget=4000, example_tokens=0))
        assert HEADING not in off.build_prompt(RESEMBLING).messages[0]["content"]


def test_no_examples_no_search(store: MemoryStore) -> None:
    """A profile without examples does one indexed lookup per change of the
    database and no search at all (the turn's overhead at 100k memories)."""
    shelf = ExampleShelf(store)
    store.remember("Translate to French is something I do a lot")
    shelf.refresh(store.backend.change_mark(store.scope))
    assert shelf.relevant(RESEMBLING) == []
    assert shelf._examples == []
    store.add_memory(*FRENCH[0][:1], kind="example", metadata={"output": FRENCH[0][1]})
    shelf.refresh(store.backend.change_mark(store.scope))  # the mark moved: looked up again
    assert [e.output for e in shelf.relevant(RESEMBLING)] == ["Bonjour"]


def test_many_examples_are_found_by_the_stores_search(tmp_path: Path) -> None:
    """Past ``direct_limit`` examples the store's hybrid search (kind ``example``)
    brings the candidates; the same floor keeps unrelated ones out."""
    with Memory.open(tmp_path / "m.db") as mem:
        add_three(mem)
        mem.add_example("Write a haiku about the sea", "Waves fold into foam")
        direct, searched = ExampleShelf(mem.store), ExampleShelf(mem.store, direct_limit=2)
        for shelf in (direct, searched):
            found = shelf.relevant(RESEMBLING)
            assert sorted(e.input for e in found) == sorted(i for i, _ in FRENCH)
            assert all(e.similarity >= SIMILARITY_FLOOR for e in found)
            assert shelf.relevant(UNRELATED) == []
        assert searched._examples is None and direct._examples is not None
        assert [e.input for e in direct.relevant("a haiku about the moon")] == [
            "Write a haiku about the sea"
        ]


# -------------------------------------------------------------- writing, REPL
def test_bad_examples_are_one_line_errors(cli: Any) -> None:
    for args, words in (
        (["add", "only input"], "takes INPUT and OUTPUT"),
        (["add", " ", "out"], "needs an input and an output"),
        (["rm", "x"], "takes example ids"),
        (["list", "extra"], "takes no arguments"),
        (["bogus"], "Unknown action 'bogus'"),
    ):
        res = cli("example", *args, code=2)
        assert words in res.stderr and res.stderr.count("\n") == 1, res.stderr
    fact = cli.json("remember", "I like tea")["id"]
    res = cli("example", "rm", str(fact), code=2)
    assert "is not an example: forget it with `mem forget`" in res.stderr
    added = cli.json("example", "add", "2+2", "4")
    assert cli.json("example", "rm", str(added["id"]))["forgotten"] == [added["id"]]
    assert cli.json("example", "list") == []


def test_examples_are_secret_gated_and_belong_to_one_profile(tmp_path: Path) -> None:
    key = "sk-proj-AbCdEf0123456789AbCdEf0123456789xyz"
    with Memory.open(tmp_path / "m.db", profile="alice") as alice:
        ex = alice.add_example("What is my key?", f"It is {key}")
        assert key not in json.dumps(ex.to_dict())
        assert ex.metadata["redacted"] and "[redacted" in ex.metadata["output"]
    with Memory.open(tmp_path / "m.db", profile="alice", secrets="refuse") as alice:
        with pytest.raises(SecretRefusedError):
            alice.add_example("my key", key)
        add_three(alice)
        assert len(list_examples(alice.store, task="french")) == 3
    with Memory.open(tmp_path / "m.db", profile="bob") as bob:
        assert bob.list(kind="example") == []
        prompt = Assistant(bob.store, Settings(budget=4000)).build_prompt(RESEMBLING)
        assert HEADING not in prompt.messages[0]["content"]


def test_repl_example_and_keep(fake_llm: Any, tmp_path: Path, capsys: Any) -> None:
    from cli.repl import Repl

    with Memory.open(tmp_path / "m.db") as mem:
        assistant = mem.assistant(MODEL)
        repl = Repl(assistant)
        assistant.open_conversation()
        repl.slash("/keep")
        assert "Error: Nothing to keep yet" in capsys.readouterr().out
        repl.slash("/example Translate to French: good night => Bonne nuit")
        assert "+ example #" in capsys.readouterr().out
        repl.slash("/example no arrow here")
        assert "Usage: /example INPUT => OUTPUT" in capsys.readouterr().out
        fake_llm.enqueue("Merci beaucoup")
        assistant.turn("Translate to French: thank you very much")
        repl.slash("/keep french")
        assert "+ example #" in capsys.readouterr().out
        kept = list_examples(mem.store, task="french")
        assert [(e.input, e.output) for e in kept] == [FRENCH[1]]
        # Lineage: forgetting the reply it was kept from forgets the example.
        reply = mem.store.messages(assistant.conversation or "")[-1]
        assert reply.role == "assistant"
        index_row = next(m.id for m in mem.list(kind="message") if m.source_message_id == reply.id)
        report = mem.forget([index_row])
        assert kept[0].id in report.derived
        assert list_examples(mem.store, task="french") == []


# ------------------------------------------------------------ export, forget
def test_export_and_import_keep_examples_whole(tmp_path: Path) -> None:
    out = io.StringIO()
    with Memory.open(tmp_path / "a.db") as mem:
        add_three(mem)
        mem.export(out)
    dump = tmp_path / "dump.jsonl"
    dump.write_text(out.getvalue())
    with Memory.open(tmp_path / "b.db") as other:
        other.import_(dump)
        again = [(e.input, e.output, e.task) for e in list_examples(other.store)]
        assert sorted(again) == sorted((i, o, "french") for i, o in FRENCH)
        prompt = Assistant(other.store, Settings(budget=4000)).build_prompt(RESEMBLING)
        assert prompt.part("examples").items == 3


def test_forget_by_query_takes_examples(tmp_path: Path) -> None:
    with Memory.open(tmp_path / "m.db") as mem:
        ids = add_three(mem)
        chosen = mem.select(query="tomorrow", kind="example")
        assert [m.id for m in chosen] == [ids[2]]
        mem.forget([ids[2]], query="tomorrow")
        assert len(mem.list(kind="example")) == 2
        # the output is part of the text: its words find the example too
        assert [m.id for m in mem.select(query="beaucoup", kind="example")] == [ids[1]]
        assert mem.search("Merci beaucoup", kinds="example")[0].id == ids[1]
        assert mem.get(ids[1]).content == f"{FRENCH[1][0]} => {FRENCH[1][1]}"


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_every_backend_forgets_an_example_with_either_message(backend: str, tmp_path: Path) -> None:
    """Lineage on the storage seam: an example kept from an exchange derives from
    both messages (``metadata.source_message_ids``); a fact merely carrying such a
    list does not (only fact keys and examples are read by it)."""
    db = BACKENDS[backend](tmp_path).new()
    try:
        for forgotten in (0, 1):
            conv = f"c{forgotten}"
            asked = say(db, ALICE, conv, "Translate to French: thank you")
            said = say(db, ALICE, conv, "Merci", role="assistant")
            pair = [asked, said]
            rows = [row_of(db, ALICE, m) for m in pair]  # before the example takes a link
            meta = {"source_message_ids": pair}
            text = "Translate to French: thank you => Merci"
            example = add(db, ALICE, text, kind="example", source_message_id=asked, metadata=meta)
            bystander = add(db, ALICE, "a note", metadata=meta)
            result = db.forget(ALICE, [rows[forgotten]])
            assert example in result.derived and bystander not in result.derived
            assert db.memories(ALICE, [example]) == []
    finally:
        db.close()


# -------------------------------------------------------------- migrations
def test_a_schema_5_sqlite_file_is_upgraded_to_take_examples(tmp_path: Path) -> None:
    """A file written by the previous mem (m001-m005): opening it applies m006 in
    one transaction, the rows and their vectors stay, and examples can be added."""
    path = tmp_path / "old.db"
    with MemoryStore.open(path) as s:
        kept = s.remember("My sister Ana lives in Lisbon").id
    conn = connect(path)
    # Back to the m005 schema: the memories table's SQL as m001 wrote it.
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'memories'").fetchone()
    (version,) = conn.execute("PRAGMA schema_version").fetchone()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = ? WHERE name = 'memories'",
        [sql.replace(", 'example')", ")")],
    )
    conn.execute(f"PRAGMA schema_version = {version + 1}")
    conn.execute("PRAGMA writable_schema = OFF")
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm006_example_kind'")
    conn.execute("COMMIT")
    with pytest.raises(Exception, match="CHECK constraint failed"):
        conn.execute(
            "INSERT INTO memories(profile, kind, content, source, created_at, updated_at) "
            "VALUES ('default', 'example', 'x', 'user', '2024', '2024')"
        )
    assert applied_names(conn) == _known_names()[:-1]
    conn.close()
    with Memory.open(path) as mem:
        assert applied_names(mem.store.conn) == _known_names()
        assert mem.store.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert [h.id for h in mem.search("where does Ana live?")] == [kept]
        assert mem.add_example("2+2", "4").kind == "example"
    with pytest.raises(UsageError, match="Unknown kind 'nope'"):
        with Memory.open(path) as mem:
            mem.store.add_memory("x", kind="nope")


def test_a_brand_new_sqlite_file_refuses_unknown_kinds_still(tmp_path: Path) -> None:
    conn = connect(tmp_path / "new.db")
    from sqlite_utils import Database

    _migrations().apply(Database(conn))
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'memories'").fetchone()
    assert "'summary', 'example')" in sql
    with pytest.raises(Exception, match="CHECK constraint failed"):
        conn.execute(
            "INSERT INTO memories(profile, kind, content, source, created_at, updated_at) "
            "VALUES ('default', 'nope', 'x', 'user', '2024', '2024')"
        )
    conn.close()


def test_a_later_kind_widens_the_constraint_the_same_way(tmp_path: Path) -> None:
    """``widen_kinds`` is there for the next kind too: it appends to whatever list the
    file has, once, and refuses a table whose constraint it cannot find."""
    conn = connect(tmp_path / "new.db")
    from sqlite_utils import Database

    _migrations().apply(Database(conn))
    for _ in range(2):
        conn.execute("BEGIN IMMEDIATE")
        widen_kinds(conn, "later")
        conn.execute("COMMIT")
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'memories'").fetchone()
    assert sql.count("'later'") == 1 and "'summary', 'example', 'later')" in sql
    conn.execute(
        "INSERT INTO memories(profile, kind, content, source, created_at, updated_at) "
        "VALUES ('default', 'later', 'x', 'user', '2024', '2024')"
    )
    conn.execute("CREATE TABLE other (kind TEXT)")
    conn.execute("DROP TABLE memories_fts")
    conn.execute("DROP TRIGGER memories_id_floor")
    conn.execute("ALTER TABLE memories RENAME TO memories_old")
    conn.execute("ALTER TABLE other RENAME TO memories")
    with pytest.raises(CorruptDatabaseError, match="no kind constraint mem knows"):
        widen_kinds(conn, "another")
    conn.close()


def test_an_older_postgres_schema_is_upgraded_to_take_examples(pg_url: str) -> None:
    from memory.storage.postgres import migrations

    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert migrations.migrate(conn, "test", upto=4) == [1, 2, 3, 4]
        conn.execute(
            "INSERT INTO memories (profile, kind, content, source, created_at, updated_at, tokens) "
            "VALUES ('default', 'fact', 'written by schema four', 'user', '2024', '2024', 4)"
        )
    info = psycopg.conninfo.conninfo_to_dict(pg_url)
    url = f"postgresql://{info.get('user') or 'postgres'}@/{info['dbname']}?host={info['host']}"
    url += f"&port={info['port']}" if info.get("port") else ""
    with Memory.open(url) as mem:
        applied = mem.store.backend.conn.execute(  # type: ignore[attr-defined]
            "SELECT max(version) FROM schema_migrations"
        ).fetchone()
        assert applied == (migrations.LATEST,)
        assert [m.content for m in mem.list()] == ["written by schema four"]
        add_three(mem)
        assistant = Assistant(mem.store, Settings(budget=4000))
        assert assistant.build_prompt(RESEMBLING).part("examples").items == 3
        assert HEADING not in assistant.build_prompt(UNRELATED).messages[0]["content"]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO memories (profile, kind, content, source, created_at, updated_at) "
                "VALUES ('default', 'nope', 'x', 'user', '2024', '2024')"
            )
