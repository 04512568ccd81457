"""What only the PostgreSQL backend promises (the shared behaviour runs in
tests/test_storage_protocol.py and test_storage_lineage.py): row-level
security against raw SQL from another member's role, refusing to act for
another profile, schema migrations, redacted URLs, concurrent writers."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from typing import Any

import pg_server
import psycopg
import pytest
from pg_load import open_new, write_and_search
from pg_server import with_database
from storage_harness import ALICE, ALL, BOB, DIM, SYSTEM, add, say, vec

from memory.errors import EmbedderMismatchError, MemError, SchemaTooNewError, UsageError
from memory.storage import DocumentInfo, MemoryPatch, NewEvent, NewMemory, Scope
from memory.storage.postgres import (
    PermissionDeniedError,
    PostgresBackend,
    admin,
    migrations,
    redact,
)

TABLES = (*migrations.NAMESPACED, migrations.TERM_STATS, "memory_vectors")


def as_role(url: str, role: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["user"] = role
    return psycopg.conninfo.make_conninfo(**info)


@pytest.fixture
def owner(pg_url: str) -> Iterator[PostgresBackend]:
    db = PostgresBackend.open(pg_url, embedder="toy", dim=DIM)
    for profile in ("alice", "bob"):
        admin.add_member(pg_url, profile)
    yield db
    db.close()


def alice_everywhere(db: PostgresBackend) -> int:
    """A row of alice's in every table."""
    message = say(db, ALICE, "c-alice", "alice's secret plan is to move to Lima")
    fact = add(db, ALICE, "alice moves to Lima", source_message_id=message)
    db.add_event(ALICE, NewEvent(fact, "add", after={"content": "alice moves to Lima"}))
    db.put_document(ALICE, DocumentInfo("plan.md", "markdown", "h", 1, 1.0, 1, "v1"))
    return fact


def test_a_member_role_cannot_see_count_or_change_another_profiles_rows(
    owner: PostgresBackend, pg_url: str
) -> None:
    fact = alice_everywhere(owner)
    with psycopg.connect(as_role(pg_url, "alice"), autocommit=True) as alice:
        assert all(
            alice.execute(f"SELECT count(*) FROM {t}".encode()).fetchone() != (0,) for t in TABLES
        )
    with psycopg.connect(as_role(pg_url, "bob"), autocommit=True) as bob:
        for table in TABLES:
            assert bob.execute(f"SELECT count(*) FROM {table}".encode()).fetchone() == (0,), table
            changed = bob.execute(f"UPDATE {table} SET profile = 'bob'".encode()).rowcount
            assert changed == 0, table
            assert bob.execute(f"DELETE FROM {table}".encode()).rowcount == 0, table
        assert bob.execute("UPDATE memories SET content = 'x' WHERE id = %s", [fact]).rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            bob.execute(
                "INSERT INTO memories (profile, kind, content, source, created_at, updated_at) "
                "VALUES ('alice', 'fact', 'planted', 'user', '', '')"
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            bob.execute("UPDATE meta SET value = 'other'")
        # The planner's statistics would show alice's words: hidden under RLS.
        owner.conn.execute("ANALYZE memories")
        stats = "SELECT count(*) FROM pg_stats WHERE tablename = 'memories'"
        assert owner.conn.execute(stats).fetchone() != (0,)
        assert bob.execute(stats).fetchone() == (0,)
        # A setting bob controls changes nothing: the policies read current_user.
        bob.execute("SELECT set_config('app.profile', 'alice', false)")
        assert bob.execute("SELECT count(*) FROM memories").fetchone() == (0,)
    assert owner.memory(ALICE, fact).content == "alice moves to Lima"


def test_a_member_reads_what_it_was_granted_and_writes_only_its_own(
    owner: PostgresBackend, pg_url: str
) -> None:
    fact = alice_everywhere(owner)
    guide = add(owner, SYSTEM, "the install guide says run make", kind="document")
    bob = PostgresBackend.open(as_role(pg_url, "bob"), scope=BOB)
    try:
        assert not bob.trusted
        assert bob.memories(BOB, [fact, guide]) == []
        admin.grant(pg_url, "system", "bob")
        assert [m.id for m in bob.memories(BOB, [fact, guide])] == [guide]
        assert guide in bob.keyword_scores(BOB, "install", ALL)
        mine = add(bob, BOB, "bob's own note about make")
        assert {m.id for m in bob.list_memories(BOB, ALL)} == {mine, guide}
        assert bob.keyword_stats(BOB).rows == 2
        with pytest.raises(PermissionDeniedError):
            add(bob, Scope("system"), "bob writes into system")
        with pytest.raises(PermissionDeniedError):
            bob.memory(ALICE, fact)
        with pytest.raises(UsageError, match="taken"):  # as in SQLite, without whose
            bob.add_conversation(BOB, "c-alice")
        result = bob.forget(BOB, [mine])
        assert result.memories == [mine] and result.scrub_pending  # the owner vacuums
        assert admin.scrub(pg_url)
        admin.grant(pg_url, "system", "bob", revoke=True)
        assert bob.memories(BOB, [guide]) == []
    finally:
        bob.close()


def test_opening_checks_the_embedder(pg_url: str) -> None:
    with pytest.raises(UsageError, match="give the embedder and its dimension"):
        PostgresBackend.open(pg_url)
    PostgresBackend.open(pg_url, embedder="toy", dim=4).close()
    with pytest.raises(EmbedderMismatchError, match="mem reindex"):
        PostgresBackend.open(pg_url, embedder="other", dim=4)
    db = PostgresBackend.open(pg_url)
    try:
        with pytest.raises(UsageError, match="vector of 3 numbers"):
            db.add_memory(ALICE, NewMemory("x"), [1.0, 0.0, 0.0])
    finally:
        db.close()


def test_opening_for_another_profile_is_refused(owner: PostgresBackend, pg_url: str) -> None:
    with pytest.raises(PermissionDeniedError, match="connect as that profile's role"):
        PostgresBackend.open(as_role(pg_url, "bob"), scope=ALICE)


def test_an_older_schema_is_upgraded_on_open(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert migrations.migrate(conn, "test", upto=1) == [1]
        conn.execute(
            "INSERT INTO memories (profile, kind, content, source, created_at, updated_at, tokens) "
            "VALUES ('alice', 'fact', 'written by schema one', 'user', '2024', '2024', 4)"
        )
    db = PostgresBackend.open(pg_url, embedder="toy", dim=DIM)
    try:
        assert migrations.version(db.conn) == migrations.LATEST
        applied = db.conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        assert [v for (v,) in applied] == [n for n, _, _ in migrations.MIGRATIONS]
        (old,) = db.list_memories(ALICE, ALL)
        assert old.content == "written by schema one"
        assert list(db.keyword_scores(ALICE, "schema", ALL)) == [old.id]
    finally:
        db.close()


def term_stats(conn: Any) -> set[tuple[str, str, str, int]]:
    rows = conn.execute("SELECT profile, lexeme, weight, docs FROM term_stats").fetchall()
    return {(str(p), str(lex), str(w), int(d)) for p, lex, w, d in rows}


def counted_terms(conn: Any) -> set[tuple[str, str, str, int]]:
    """What ``term_stats`` should hold, counted from the rows themselves."""
    rows = conn.execute(
        "SELECT m.profile, u.lexeme, w, count(DISTINCT m.id) FROM memories m "
        "CROSS JOIN LATERAL unnest(m.tsv) u CROSS JOIN LATERAL unnest(u.weights) w "
        "GROUP BY 1, 2, 3"
    ).fetchall()
    return {(str(p), str(lex), str(w), int(d)) for p, lex, w, d in rows}


def test_term_statistics_follow_every_write_and_leave_no_forgotten_word(
    owner: PostgresBackend,
) -> None:
    """Document frequencies per profile, word and weight (migration 7) are
    what the rows hold after adds, a changed text, a forget and a rolled-back
    transaction; a word no row holds any more has no row of its own."""
    db = owner
    say(db, ALICE, "c", "we plan the trip to Lima in May")
    keep = add(db, ALICE, "Lima is the capital of Peru", speaker="Lima Guide")
    change = add(db, ALICE, "the zephyrine plan")
    gone = add(db, ALICE, "the quokkafold word")
    add(db, BOB, "bob also plans a trip to Lima")
    db.update_memory(ALICE, change, MemoryPatch(content="the revised plan"), vec("revised"))
    db.forget(ALICE, [gone])
    with pytest.raises(RuntimeError), db.transaction(ALICE):
        add(db, ALICE, "a rolled back lima note")
        raise RuntimeError("boom")
    found = term_stats(db.conn)
    assert found == counted_terms(db.conn)
    words = {(p, lex) for p, lex, _, _ in found}
    assert ("alice", "zephyrin") not in words and ("alice", "quokkafold") not in words
    assert ("alice", "lima", "A", 2) in found and ("alice", "lima", "B", 1) in found
    assert ("bob", "lima", "A", 1) in found
    # BM25's df and N are the readable profiles' own: bob's rows move none of
    # alice's scores, however many hold the word.
    before = db.keyword_scores(ALICE, "lima", ALL)
    assert keep in before
    with db.transaction(BOB):
        for i in range(30):
            add(db, BOB, f"lima note {i}")
    assert db.keyword_scores(ALICE, "lima", ALL) == before
    assert db.keyword_scores(ALICE, "lima", ALL, newest=1) == {max(before): before[max(before)]}


def test_a_common_word_and_a_rare_one_score_as_over_every_match(owner: PostgresBackend) -> None:
    """A common word's newest matches are found by walking the rows back, a
    rare word's through the index (two statements): either way, the scores of
    the newest ``n`` matches are those the same rows get when every match is
    scored."""
    db = owner
    with db.transaction(ALICE):
        ids = [
            add(db, ALICE, f"alpha note {i}" + (" beta" if i % 60 == 0 else "")) for i in range(300)
        ]
    add(db, BOB, "alpha beta for bob")  # another profile's rows count for neither
    for word, df in (("alpha", 300), ("beta", 5)):
        every = db.keyword_scores(ALICE, word, ALL, limit=1000)
        assert len(every) == df
        newest = db.keyword_scores(ALICE, word, ALL, limit=1000, newest=4)
        assert sorted(newest) == sorted(every)[-4:]
        assert all(newest[i] == pytest.approx(every[i]) for i in newest)
    assert max(ids) in db.keyword_scores(ALICE, "alpha", ALL, limit=1, newest=4)


def test_an_older_schema_counts_its_terms_when_upgraded(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert migrations.migrate(conn, "test", upto=6) == [1, 2, 3, 4, 5, 6]
        for profile, text, speaker in (
            ("alice", "written before the counts", None),
            ("alice", "counts of words", "Ada"),
            ("bob", "bob's words", "Bob"),
        ):
            conn.execute(
                "INSERT INTO memories (profile, kind, content, source, created_at, updated_at, "
                "speaker, tokens) VALUES (%s, 'fact', %s, 'user', '2024', '2024', %s, 3)",
                [profile, text, speaker],
            )
    db = PostgresBackend.open(pg_url, embedder="toy", dim=DIM)
    try:
        assert migrations.version(db.conn) == migrations.LATEST
        assert term_stats(db.conn) == counted_terms(db.conn) != set()
        assert ("alice", "count", "A", 2) in term_stats(db.conn)
    finally:
        db.close()


def test_a_newer_schema_is_refused_in_one_line_without_the_password(pg_url: str) -> None:
    PostgresBackend.open(pg_url, embedder="toy", dim=DIM).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
    secret = with_database(pg_url, psycopg.conninfo.conninfo_to_dict(pg_url)["dbname"] or "")
    secret += " password=hunter2"
    with pytest.raises(SchemaTooNewError) as err:
        PostgresBackend.open(secret)
    message = str(err.value)
    assert "999" in message and "upgrade mem" in message
    assert "\n" not in message and "hunter2" not in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://mem:s3cr%40t@db.example:5432/mem", "postgresql://mem:***@db.example:5432/mem"),
        ("postgres://:pw@host/db", "postgres://:***@host/db"),
        ("host=db user=mem password=s3cret dbname=mem", "host=db user=mem password=*** dbname=mem"),
        ("host=db password='a b\\'c' dbname=mem", "host=db password=*** dbname=mem"),
        ("postgresql://host/db?password=s3cret&sslmode=require",
         "postgresql://host/db?password=***&sslmode=require"),
        ("postgresql://mem@host/db", "postgresql://mem@host/db"),
    ],
)  # fmt: skip
def test_urls_are_redacted(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize("url", ["host=db password s3cret", "postgresql://u:s3cret@h/d?bogus=1"])
def test_a_malformed_url_is_refused_without_showing_it(url: str) -> None:
    with pytest.raises(UsageError, match="Invalid PostgreSQL URL") as err:
        PostgresBackend.open(url)
    assert "s3cret" not in str(err.value)


def test_an_unreachable_server_is_named_without_its_password() -> None:
    url = "postgresql://mem:hunter2@127.0.0.1:1/mem?connect_timeout=2"
    with pytest.raises(MemError) as err:
        PostgresBackend.open(url)
    assert "hunter2" not in str(err.value) and "127.0.0.1" in str(err.value)
    assert "\n" not in str(err.value)


def test_first_opens_at_once_make_one_schema(pg_url: str) -> None:
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        assert pool.starmap(open_new, [(pg_url, DIM)] * 4) == [""] * 4
    db = PostgresBackend.open(pg_url)
    try:
        assert migrations.version(db.conn) == migrations.LATEST and db.dim == DIM
    finally:
        db.close()


WRITERS, WRITES = 8, 500


def test_concurrent_writers_lose_nothing_while_searches_run(pg_url: str) -> None:
    PostgresBackend.open(pg_url, embedder="toy", dim=DIM).close()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(WRITERS + 2) as pool:
        jobs = [
            pool.apply_async(write_and_search, (pg_url, f"p{i % 4}", WRITES, i < WRITERS))
            for i in range(WRITERS + 2)
        ]
        results = [job.get(timeout=600) for job in jobs]
    errors = [e for r in results for e in r["errors"]]
    assert errors == []
    assert sum(r["writes"] for r in results) == WRITERS * WRITES
    assert all(r["searches"] > 0 for r in results[WRITERS:])
    db = PostgresBackend.open(pg_url)
    try:
        total = sum(len(db.list_memories(Scope(f"p{i}"), ALL)) for i in range(4))
        assert total == WRITERS * WRITES
        stats = sum(db.keyword_stats(Scope(f"p{i}")).rows for i in range(4))
        assert stats == total
        assert term_stats(db.conn) == counted_terms(db.conn)
        assert len(db.nearest(Scope("p0"), vec("note 7"), ALL, k=5, exact=False)) == 5
    finally:
        db.close()


def test_mem_admin_sets_up_members(cli: Any, pg_url: str) -> None:
    out = cli("admin", "init", "--url", pg_url, "--embedder", "hash-64").stdout
    assert f"version {migrations.LATEST}" in out and "hash-64" in out
    cli("admin", "add-member", "carol", "--url", pg_url)
    cli("admin", "grant", "system", "carol", "--url", pg_url)
    owner = PostgresBackend.open(pg_url)
    try:
        guide = owner.add_memory(SYSTEM, NewMemory("shared guide"), [1.0] + [0.0] * 63)
    finally:
        owner.close()
    carol = PostgresBackend.open(as_role(pg_url, "carol"), scope=Scope.of("carol"))
    try:
        assert [m.id for m in carol.memories(Scope.of("carol"), [guide])] == [guide]
    finally:
        carol.close()
    bad = cli("admin", "add-member", "System", "--url", pg_url, code=2)
    assert "cannot be a member role" in bad.stderr
    assert "Error: No PostgreSQL URL" in cli("admin", "scrub", code=2).stderr


def test_scrub_waits_for_an_open_reader_then_leaves_no_half_index(pg_url: str) -> None:
    db = PostgresBackend.open(pg_url, embedder="toy", dim=DIM)
    try:
        fact = add(db, ALICE, "the vault word is quokka")
        with psycopg.connect(pg_url) as reader:  # a transaction left open on the table
            reader.execute("SELECT count(*) FROM memories")
            result = db.forget(ALICE, [fact])
            assert result.scrub_pending
        indexes = "SELECT count(*) FROM pg_index WHERE indrelid = 'memories'::regclass"
        valid = db.conn.execute(indexes + " AND indisvalid").fetchone()
        assert db.scrub(ALICE)  # the reader is gone; a leftover copy is dropped
        assert db.conn.execute(indexes).fetchone() == valid
        # A snapshot that holds no lock on the tables: a rewrite would keep the
        # rows it may still see, so the scrub waits for it too.
        other = add(db, ALICE, "the other vault word is wallaby")
        with psycopg.connect(pg_url) as reader:
            reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            reader.execute("SELECT count(*) FROM documents")
            assert db.forget(ALICE, [other]).scrub_pending
        assert db.scrub(ALICE)
        assert b"wallaby" not in pg_server.probe(pg_url)
        unfinished = "SELECT count(*) FROM pg_index WHERE NOT indisvalid"
        assert db.conn.execute(unfinished).fetchone() == (0,)
    finally:
        db.close()
