"""Documents as shared semantic memory: chunking, exclusions, incremental
re-adding, metadata filters, profiles, and the assistant citing a chunk."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from memory import MemoryStore
from memory.errors import UsageError
from memory.knowledge.chunking import Chunk, chunk_file
from memory.knowledge.documents import add_documents, chunk_ids, documents
from memory.knowledge.files import compile_pattern, discover
from memory.models.tokens import counter
from memory.retrieval.search import find
from memory.storage.sqlite.schema import _known_names, applied_names

ROOT = Path(__file__).resolve().parent.parent
DESIGN = Path(__file__).resolve().parents[2] / "shared" / "DESIGN.md"
COUNT = counter()


def chunks_of(path: Path, fmt: str, **kw: Any) -> list[Chunk]:
    return list(chunk_file(path, fmt, COUNT, **kw))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def para(seed: int, words: int = 40) -> str:
    vocab = "river stone lantern orchard copper meadow harbor signal velvet compass".split()
    return " ".join(vocab[(seed * 7 + i * 3) % len(vocab)] for i in range(words)) + "."


# ------------------------------------------------------------------ chunking
def test_markdown_chunks_follow_headings_with_exact_lines(tmp_path: Path) -> None:
    text = (
        "# Guide\n\nIntro text.\n\n## Install\n\nRun the installer.\n\n```bash\n"
        "# not a heading inside a fence\nmake install\n```\n\n### Linux\n\nUse apt.\n\n"
        "Setext title\n------------\n\nUnder setext.\n"
    )
    path = write(tmp_path / "guide.md", text)
    lines = text.splitlines()
    got = chunks_of(path, "markdown")
    assert [c.heading for c in got] == [
        "Guide",
        "Guide > Install",
        "Guide > Install > Linux",
        "Guide > Setext title",
    ]
    install = got[1]
    assert "# not a heading inside a fence\nmake install\n```" in install.text
    for chunk in got:
        body = chunk.text.splitlines()
        assert body[0] == lines[chunk.line_start - 1]
        assert body[-1] == lines[chunk.line_end - 1]


def test_heading_without_text_is_carried_into_the_next_chunk(tmp_path: Path) -> None:
    path = write(tmp_path / "a.md", "# Title\n\n## Part\n\nBody of the part.\n")
    (only,) = chunks_of(path, "markdown")
    assert (only.line_start, only.line_end, only.heading) == (1, 5, "Title > Part")
    assert only.text == "# Title\n\n## Part\n\nBody of the part."


def test_long_section_is_split_with_a_small_overlap(tmp_path: Path) -> None:
    body = "\n\n".join(para(i) for i in range(30))
    path = write(tmp_path / "long.md", f"# Long\n\n{body}\n\n# Next\n\nShort tail.\n")
    got = chunks_of(path, "markdown", max_tokens=200, overlap=60)
    long_part = [c for c in got if c.heading == "Long"]
    assert len(long_part) >= 4
    for chunk in got:
        assert COUNT(chunk.text) <= 200 + 10
    for prev, nxt in zip(long_part, long_part[1:], strict=False):
        assert nxt.line_start <= prev.line_end  # overlap
        assert nxt.line_start > prev.line_start
    # No overlap across a heading: the next section starts at its heading.
    nxt = next(c for c in got if c.heading == "Next")
    assert nxt.text.startswith("# Next") and nxt.line_start > long_part[-1].line_end


def test_a_huge_line_is_cut_into_bounded_chunks(tmp_path: Path) -> None:
    path = write(tmp_path / "min.js", "var x = '" + "abc def " * 6000 + "';\n")
    got = chunks_of(path, "code", max_tokens=300, overlap=0)
    assert len(got) > 5
    assert all(c.line_start == c.line_end == 1 for c in got)
    assert all(COUNT(c.text) <= 320 for c in got)
    assert "".join(c.text for c in got) == path.read_text().rstrip("\n")


def test_code_chunks_per_definition_with_trail(tmp_path: Path) -> None:
    source = (
        '"""Module."""\n\nimport os\n\n\nclass Store:\n    """A store."""\n\n'
        "    @property\n    def size(self) -> int:\n        return 1\n\n"
        "    def close(self) -> None:\n        pass\n\n\n"
        "def helper(x):\n    def inner():\n        return x\n    return inner\n"
    )
    path = write(tmp_path / "mod.py", source)
    got = chunks_of(path, "code")
    assert [c.heading for c in got] == [
        "",
        "class Store",
        "class Store > def size",
        "class Store > def close",
        "def helper",
    ]
    size = got[2]
    assert size.text.startswith("    @property\n    def size")  # the decorator goes with it
    assert (size.line_start, size.line_end) == (9, 11)
    js = write(tmp_path / "app.ts", "export function start() {\n  go();\n}\n\nclass Bar {\n}\n")
    assert [c.heading for c in chunks_of(js, "code")] == ["function start", "class Bar"]


def test_rst_titles(tmp_path: Path) -> None:
    text = "=====\nTitle\n=====\n\nIntro.\n\nUsage\n-----\n\nRun it.\n\nDetails\n~~~~~~~\nMore.\n"
    path = write(tmp_path / "doc.rst", text)
    assert [(c.heading, c.line_start) for c in chunks_of(path, "rst")] == [
        ("Title", 1),
        ("Title > Usage", 7),
        ("Title > Usage > Details", 12),
    ]


def test_html_text_headings_and_source_lines(tmp_path: Path) -> None:
    html = (
        "<html><head><title>T</title><style>p {}</style></head>\n<body>\n"
        "<h1>Manual &amp; notes</h1>\n<p>First\nparagraph.</p>\n<script>var hidden = 1;</script>\n"
        "<h2>Setup</h2>\n<ul><li>one</li><li>two <b>bold</b></li></ul>\n"
        "<pre>\ndef f():\n    return 1\n</pre>\n</body></html>\n"
    )
    path = write(tmp_path / "page.html", html)
    got = chunks_of(path, "html")
    assert [c.heading for c in got] == ["Manual & notes", "Manual & notes > Setup"]
    assert got[0].text == "# Manual & notes\n\nFirst paragraph."
    assert (got[0].line_start, got[0].line_end) == (3, 5)
    assert "hidden" not in "".join(c.text for c in got)
    assert got[1].text == "## Setup\n\n- one\n\n- two bold\n\ndef f():\n    return 1"
    assert got[1].line_start == 7


def _pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page."""
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    for text in pages:
        page_no, content_no = len(objs) + 1, len(objs) + 2
        kids.append(f"{page_no} 0 R")
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        objs.append(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Contents {content_no} 0 R /Resources << /Font << /F1 {{font}} 0 R >> >> >>"
        )
        objs.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    font_no = len(objs) + 1
    objs.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    objs[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body.replace('{font}', str(font_no))}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_pdf_pages(tmp_path: Path, store: MemoryStore) -> None:
    pytest.importorskip("pypdf")
    path = tmp_path / "report.pdf"
    path.write_bytes(_pdf(["Quarterly volcano survey results", "Second page about glaciers"]))
    report = add_documents(store, [path], max_tokens=40, overlap=0)
    assert report.new == 1
    hits = find(store, "glaciers", kinds="document")
    meta = hits[0].metadata
    assert (meta["page_start"], meta["page_end"], meta["line_start"], meta["line_end"]) == (
        1,
        2,
        1,
        2,
    )
    assert hits[0].content == "Quarterly volcano survey results\n\nSecond page about glaciers"


# --------------------------------------------------------------- exclusions
@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "verdict"),
    [
        ("*.log", "a.log", False, True),
        ("*.log", "deep/x/a.log", False, True),
        ("*.log", "a.logx", False, False),
        ("/top.md", "top.md", False, True),
        ("/top.md", "sub/top.md", False, False),
        ("build/", "build", True, True),
        ("build/", "build", False, False),
        ("docs/*.tmp", "docs/a.tmp", False, True),
        ("docs/*.tmp", "docs/x/a.tmp", False, False),
        ("**/gen", "a/b/gen", True, True),
        ("a/**/z.md", "a/z.md", False, True),
        ("a/**/z.md", "a/b/c/z.md", False, True),
        ("out/**", "out/x/y", False, True),
        ("file[0-9].md", "file3.md", False, True),
        ("file?.md", "file10.md", False, False),
        ("\\#hash", "#hash", False, True),
    ],
)
def test_gitignore_patterns(pattern: str, path: str, is_dir: bool, verdict: bool) -> None:
    rule = compile_pattern(pattern)
    assert rule is not None
    matched = bool(rule.regex.match(path)) and (is_dir or not rule.dir_only)
    assert matched is verdict


def test_discover_honours_gitignore_defaults_and_exclude(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    for rel in (
        "README.md",
        "top.md",
        "notes/a.md",
        "notes/debug.txt",
        "notes/keep.txt",
        "notes/secret.md",
        "build/out.md",
        "drafts/wip.md",
        "node_modules/pkg/readme.md",
        ".git/description",
        ".venv/lib.py",
        "src/__pycache__/x.py",
        "src/main.py",
        "data.bin",
        "image.png",
    ):
        write(root / rel, "text\n")
    write(root / ".gitignore", "*.txt\n!keep.txt\nbuild/\n/top.md\n")
    write(root / "notes" / ".gitignore", "secret.md\n")
    found, skipped = discover([root], exclude=["drafts/"])
    rels = sorted(f.path.relative_to(root).as_posix() for f in found)
    assert rels == ["README.md", "notes/a.md", "notes/keep.txt", "src/main.py"]
    assert skipped == {"unsupported": 4}  # two .gitignore files, data.bin, image.png
    # A file named on the command line is read even with an unknown extension.
    found, _ = discover([root / "data.bin"])
    assert [f.format for f in found] == ["text"]


def test_gitignore_above_the_folder_applies_inside_a_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    write(repo / ".gitignore", "*.draft.md\n")
    write(repo / "docs" / "a.md", "A\n")
    write(repo / "docs" / "b.draft.md", "B\n")
    found, _ = discover([repo / "docs"])
    assert [f.path.name for f in found] == ["a.md"]


def test_binary_files_are_skipped(tmp_path: Path, store: MemoryStore) -> None:
    write(tmp_path / "d" / "ok.txt", "plain words\n")
    (tmp_path / "d" / "bad.txt").write_bytes(b"abc\0def")
    report = add_documents(store, [tmp_path / "d"])
    assert (report.new, report.skipped) == (1, {"binary": 1})


# -------------------------------------------------------------- incremental
def make_tree(root: Path) -> Path:
    write(root / "docs" / "install.md", "# Install\n\nUse the installer on Linux.\n")
    write(root / "docs" / "faq.md", "# FAQ\n\n## Price\n\nIt is free.\n\n## Size\n\nSmall.\n")
    write(root / "notes.txt", "A note about orchards.\n\nAnother paragraph.\n")
    write(root / "src" / "tool.py", "def run():\n    return 42\n")
    return root


def test_chunks_are_documents_in_system_with_metadata(tmp_path: Path, store: MemoryStore) -> None:
    root = make_tree(tmp_path / "t")
    report = add_documents(store, [root])
    assert (report.files, report.new, report.chunks_added) == (4, 4, 5)
    mems = store.list_memories(kind="document")
    assert {m.profile for m in mems} == {"system"} and {m.source for m in mems} == {"document"}
    price = next(m for m in mems if "free" in m.content)
    meta = price.metadata
    assert meta["path"] == str((root / "docs" / "faq.md").resolve())
    assert meta["heading"] == "FAQ > Price"
    assert (meta["line_start"], meta["line_end"], meta["chunk"]) == (1, 5, 0)  # with "# FAQ"
    assert (
        meta["hash"]
        == __import__("hashlib").sha256((root / "docs/faq.md").read_bytes()).hexdigest()
    )
    assert re.match(r"\d{4}-\d\d-\d\dT", meta["mtime"])
    assert price.external_id == f"{meta['path']}:1-5"
    docs = {Path(d.path).name: d for d in documents(store)}
    assert docs["faq.md"].chunks == 2 and docs["faq.md"].format == "markdown"


def test_re_adding_is_incremental(tmp_path: Path, store: MemoryStore) -> None:
    root = make_tree(tmp_path / "t")
    add_documents(store, [root])
    before = {m.id for m in store.list_memories(kind="document")}
    again = add_documents(store, [root])
    assert (again.chunks_added, again.unchanged, again.new, again.changed) == (0, 4, 0, 0)
    # Touched, same content: nothing re-chunked, the new mtime is recorded.
    faq = root / "docs" / "faq.md"
    os.utime(faq, (1_700_000_000, 1_700_000_000))
    touched = add_documents(store, [root])
    assert (touched.touched, touched.chunks_added) == (1, 0)
    assert next(d for d in documents(store) if d.path.endswith("faq.md")).mtime == 1_700_000_000
    # Changed: only that file is re-chunked; every other chunk keeps its id.
    write(root / "notes.txt", "A note about orchards.\n\nA changed paragraph about harbors.\n")
    changed = add_documents(store, [root])
    assert (changed.changed, changed.unchanged, changed.chunks_added) == (1, 3, 1)
    assert changed.chunks_removed == 1
    assert [c["path"] for c in changed.changes] == [str((root / "notes.txt").resolve())]
    after = {m.id for m in store.list_memories(kind="document")}
    assert len(before - after) == 1 and len(after - before) == 1
    assert find(store, "harbors", kinds="document")[0].content.endswith("harbors.")


def test_deleted_files_are_removed_with_sync(tmp_path: Path, store: MemoryStore) -> None:
    root = make_tree(tmp_path / "t")
    add_documents(store, [root])
    gone = (root / "docs" / "faq.md").resolve()
    ids = chunk_ids(store, "system", str(gone))
    assert len(ids) == 2
    gone.unlink()
    kept = add_documents(store, [root])
    assert (kept.stale, kept.removed) == (1, 0)
    assert chunk_ids(store, "system", str(gone)) == ids
    synced = add_documents(store, [root], sync=True)
    assert (synced.removed, synced.chunks_removed) == (1, 2)
    assert chunk_ids(store, "system", str(gone)) == []
    assert not any(d.path == str(gone) for d in documents(store))
    conn = store.conn
    total = conn.execute("SELECT count(*) FROM memories").fetchone()[0]
    assert conn.execute("SELECT count(*) FROM memory_vectors").fetchone()[0] == total
    assert conn.execute("SELECT count(*) FROM memories_vec").fetchone()[0] == total
    marks = ",".join("?" * len(ids))
    assert (
        conn.execute(f"SELECT count(*) FROM memories_fts WHERE rowid IN ({marks})", ids).fetchone()[
            0
        ]
        == 0
    )
    assert not any("free" in h.content for h in find(store, "free", kinds="document"))
    events = [e for e in store.history(ids[0]) if e.event == "forget"]
    assert events[0].detail["reason"] == "document removed"


def test_sync_only_touches_the_paths_given(tmp_path: Path, store: MemoryStore) -> None:
    root = make_tree(tmp_path / "t")
    add_documents(store, [root])
    (root / "notes.txt").unlink()
    report = add_documents(store, [root / "docs"], sync=True)
    assert (report.removed, report.stale) == (0, 0)
    assert any(d.path.endswith("notes.txt") for d in documents(store))


def test_chunk_settings_and_force_re_chunk(tmp_path: Path, store: MemoryStore) -> None:
    root = make_tree(tmp_path / "t")
    add_documents(store, [root])
    assert add_documents(store, [root], max_tokens=100).changed == 4
    assert add_documents(store, [root], max_tokens=100).unchanged == 4
    assert add_documents(store, [root], max_tokens=100, force=True).changed == 4


def test_a_large_file_is_written_a_batch_at_a_time(
    tmp_path: Path, store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import memory.knowledge.indexing as docs_module

    monkeypatch.setattr(docs_module, "BATCH_CHUNKS", 3)
    monkeypatch.setattr(docs_module, "EMBED_BATCH", 2)
    big = write(tmp_path / "big.md", "".join(f"# Part {i}\n\n{para(i)}\n\n" for i in range(9)))
    small = write(tmp_path / "small.md", "# Small\n\nTiny.\n")
    report = add_documents(store, [big, small])
    assert (report.new, report.chunks_added) == (2, 10)
    assert {Path(d.path).name: d.chunks for d in documents(store)} == {"big.md": 9, "small.md": 1}
    write(big, "# Part 0\n\nReplaced.\n")
    again = add_documents(store, [big])
    assert (again.changed, again.chunks_added, again.chunks_removed) == (1, 1, 9)
    assert len(chunk_ids(store, "system", str(big.resolve()))) == 1


def test_dry_run_writes_nothing(tmp_path: Path, store: MemoryStore) -> None:
    root = make_tree(tmp_path / "t")
    report = add_documents(store, [root], dry_run=True)
    assert (report.new, report.chunks_added) == (4, 0)
    assert documents(store) == [] and store.list_memories(kind="document") == []


def test_an_unreadable_file_is_reported_and_kept(
    tmp_path: Path, store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import memory.knowledge.indexing as docs_module

    root = make_tree(tmp_path / "t")
    add_documents(store, [root])
    write(root / "notes.txt", "Changed, but unreadable now.\n")
    real = docs_module.file_hash

    def deny(path: Path) -> str:
        if path.name == "notes.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(docs_module, "file_hash", deny)
    warnings: list[str] = []
    report = add_documents(store, [root], sync=True, warn=warnings.append)
    notes = str((root / "notes.txt").resolve())
    assert report.errors == [{"path": notes, "error": "permission denied"}]
    assert warnings == [f"skipped {notes}: permission denied"]
    assert (report.removed, report.unchanged) == (0, 3)
    assert chunk_ids(store, "system", notes)  # the old chunks stay until it can be read


def test_bad_arguments(tmp_path: Path, store: MemoryStore) -> None:
    with pytest.raises(UsageError, match="No such file or folder: nope; check the path."):
        add_documents(store, ["nope"])
    with pytest.raises(UsageError, match="--overlap"):
        add_documents(store, [tmp_path], overlap=500)


def test_migration_from_the_first_schema(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with MemoryStore.open(path) as s:
        s.remember("I like green tea")
        # Back to the released m001 schema: no documents table, no path index.
        s.conn.execute("DROP INDEX memories_document_path")
        s.conn.execute("DROP INDEX memories_superseded")
        s.conn.execute("DROP TABLE documents")
        s.conn.execute("DELETE FROM _sqlite_migrations WHERE name != 'm001_initial'")
        assert applied_names(s.conn) == ["m001_initial"]
    write(tmp_path / "a.md", "# A\n\nText.\n")
    with MemoryStore.open(path) as s:
        assert applied_names(s.conn) == _known_names()
        assert add_documents(s, [tmp_path / "a.md"]).new == 1
        assert [m.content for m in s.list_memories(kind="fact")] == ["I like green tea"]


def test_lookups_of_re_chunking_use_indexes(store: MemoryStore) -> None:
    def plan(sql: str, *params: object) -> str:
        rows = store.conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        return " ".join(str(r) for r in rows)

    assert "memories_document_path" in plan(
        "SELECT id FROM memories WHERE kind = 'document' AND profile = ? "
        "AND json_extract(metadata, '$.path') = ?",
        "system",
        "/x",
    )
    # Deleting a chunk checks the superseded_by foreign key without a table scan.
    assert "SCAN memories" not in plan("DELETE FROM memories WHERE id = ?", 1)


# ----------------------------------------------------------------- commands
def test_cli_add_docs_search_where(cli: Any, tmp_path: Path, monkeypatch: Any) -> None:
    root = make_tree(tmp_path / "t")
    monkeypatch.chdir(root)
    out = cli("add", ".").stdout
    assert out.startswith("Added 5 chunks from 4 files into system (4 new, 0 changed); 0 unchanged")
    again = cli("add", ".")
    assert again.stdout == (
        "Added 0 chunks from 0 files into system (0 new, 0 changed); 4 unchanged.\n"
    )
    listed = cli("docs")
    assert "docs/faq.md" in listed.stdout and "4 documents, 5 chunks" in listed.stderr
    docs = cli.json("docs", "faq")
    assert [Path(d["path"]).name for d in docs] == ["faq.md"]
    assert {"path", "profile", "chunks", "hash", "mtime", "size", "added_at"} <= set(docs[0])
    hits = cli.json("search", "installer linux orchards free", "--kind", "document")
    # The three chunks that share a word with the query come first, the other two after.
    top = {(Path(h["metadata"]["path"]).name, h["metadata"].get("heading")) for h in hits[:3]}
    assert top == {("install.md", "Install"), ("faq.md", "FAQ > Price"), ("notes.txt", "")}
    assert len(hits) == 5
    only_docs = cli.json("search", "installer orchards free", "--where", "path~=docs/")
    assert only_docs and all("/docs/" in h["metadata"]["path"] for h in only_docs)
    not_docs = cli.json(
        "search", "installer orchards free", "--where", "path!=x", "--where", "heading=Install"
    )
    assert [h["metadata"]["heading"] for h in not_docs] == ["Install"]
    by_line = cli.json("search", "free small", "--where", "line_start=7")
    assert [h["metadata"]["heading"] for h in by_line] == ["FAQ > Size"]
    bad = cli("search", "x", "--where", "path", code=2)
    assert bad.stderr == (
        "Error: Invalid --where 'path': use KEY=VALUE, KEY~=VALUE (contains) or KEY!=VALUE, "
        "e.g. --where path~=docs/.\n"
    )
    missing = cli("add", "nope", code=2)
    assert missing.stderr == "Error: No such file or folder: nope; check the path.\n"


def test_cli_sync_and_dry_run(cli: Any, tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t")
    cli("add", str(root))
    (root / "notes.txt").unlink()
    stale = cli("add", str(root))
    assert "1 indexed file under these paths is gone or excluded now: add again with --sync" in (
        stale.stderr
    )
    dry = cli("add", str(root), "--sync", "--dry-run")
    assert f"removed  {root / 'notes.txt'}" in dry.stdout
    assert "would remove 1 file" in dry.stdout
    synced = cli.json("add", str(root), "--sync")
    assert (synced["removed"], synced["chunks_removed"]) == (1, 1)


def test_profiles_share_system_documents(cli: Any, tmp_path: Path) -> None:
    shared = write(tmp_path / "shared.md", "# Shared\n\nThe office opens at nine.\n")
    private = write(tmp_path / "private.md", "# Private\n\nAna's locker code is blue.\n")
    cli("add", str(shared))
    cli("add", str(private), "--profile", "ana")
    assert [Path(d["path"]).name for d in cli.json("docs")] == ["shared.md"]
    ana = cli.json("docs", "--profile", "ana")
    assert sorted((Path(d["path"]).name, d["profile"]) for d in ana) == [
        ("private.md", "ana"),
        ("shared.md", "system"),
    ]
    bob = cli.json("search", "locker", "--profile", "bob", "--kind", "document")
    assert [h["profile"] for h in bob] == ["system"]
    assert cli.json("search", "office opens", "--profile", "bob")[0]["profile"] == "system"
    assert cli.json("search", "locker", "--profile", "ana")[0]["profile"] == "ana"


# --------------------------------------------------------------- acceptance
QUESTION = "Where do the tiktoken encodings come from when there is no network?"


def test_assistant_cites_the_chunk_that_answers(
    cli: Any, tmp_path: Path, fake_llm: Any, monkeypatch: Any
) -> None:
    """Adding the project's README, DESIGN notes and source tree, a question
    answered only in memory/models/tokens.py puts that chunk, with its path and lines,
    in the prompt (--show-prompt) and in the system prompt a model receives."""
    paths = [str(ROOT / "README.md"), str(ROOT / "memory")]
    if DESIGN.exists():
        shutil.copy(DESIGN, tmp_path / "DESIGN.md")
        paths.append(str(tmp_path / "DESIGN.md"))
    report = cli.json("add", *paths)
    # Every text file given is indexed: README, DESIGN and each .py/.txt under memory/.
    texts = [
        p
        for p in (ROOT / "memory").rglob("*")
        if p.is_file() and p.suffix in (".py", ".txt") and "__pycache__" not in p.parts
    ]
    assert report["new"] == len(paths) - 1 + len(texts) and not report["errors"]
    tokens_py = str((ROOT / "memory" / "models" / "tokens.py").resolve())
    hits = cli.json("search", "tiktoken encodings", "--where", f"path={tokens_py}")
    answer = next(h for h in hits if "downloads its encodings" in h["content"])
    meta = answer["metadata"]
    cite = f"[{tokens_py}:{meta['line_start']}-{meta['line_end']}]"
    shown = cli("ask", "--show-prompt", QUESTION, "--json")
    system = json.loads(shown.stdout)["messages"][0]["content"]
    assert cite in system
    assert f"{cite} " + answer["content"].splitlines()[0] in system
    plain = cli("ask", "--show-prompt", QUESTION).stdout
    assert f"{tokens_py}:{meta['line_start']}-{meta['line_end']}" in plain
    cli("ask", "--model", "openai/x", QUESTION)
    sent = [r for r in fake_llm.chat_requests() if r.get("stream")][0]
    assert cite in sent["messages"][0]["content"]


def _odd_tree(tmp_path: Path) -> Path:
    """A folder with a FIFO, a name that is not UTF-8, and links in and out."""
    root = write(tmp_path / "odd" / "a.md", "# Alpha\n\nThe alpha file talks about boats.\n").parent
    os.mkfifo(root / "pipe.md")
    with open(os.path.join(os.fsencode(root), b"caf\xe9.md"), "wb") as handle:
        handle.write(b"# Cafe\n\nThe latte costs four euros.\n")
    outside = write(tmp_path / "elsewhere" / "private.md", "# Private\n\nThe vault code.\n")
    (root / "out.md").symlink_to(outside)
    (root / "in.md").symlink_to(root / "a.md")
    return root


def test_add_skips_fifos_and_outside_links_and_keeps_odd_names(cli: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    root = _odd_tree(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # A FIFO named on the command line used to block forever in open().
    named = subprocess.run(
        [sys.executable, "-m", "cli.main", "add", str(root / "pipe.md")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert named.returncode == 0, named.stderr
    assert "skipped: 1 not a regular file" in named.stderr
    res = cli("add", str(root))
    assert "skipped: 1 link outside the folder (add --follow-links), 1 not a regular file" in (
        res.stderr
    ), res.stderr
    paths = sorted(d["path"] for d in cli.json("docs"))
    odd = str(root.resolve() / "caf\\xe9.md")
    assert paths == sorted([str(root.resolve() / n) for n in ("a.md", "in.md")] + [odd])
    assert "caf\\xe9.md" in cli("docs").stdout
    assert cli.json("search", "latte")[0]["metadata"]["path"] == odd
    again = cli.json("add", str(root), "--sync")  # the odd name is recognised, not re-added
    assert (again["unchanged"], again["removed"], again["new"]) == (3, 0, 0)
    followed = cli.json("add", str(root), "--follow-links")
    assert followed["new"] == 1 and followed["changes"][0]["path"].endswith("out.md")


def test_refused_secret_names_the_file_and_why(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "config.toml", 'secrets = "refuse"\n')
    monkeypatch.setenv("MEM_CONFIG", str(config))
    root = write(tmp_path / "d" / "ok.md", "# Fine\n\nNothing secret here.\n").parent
    write(root / "keys.md", "# Keys\n\nThe boat.\n\nmy password is Hunter2!xyz for the box\n")
    res = cli("add", str(root))
    keys = root.resolve() / "keys.md"
    assert (
        f"warning: refused {keys} (lines 1-5): Not stored: the text looks like it holds a "
        "password" in res.stderr
    ), res.stderr
    assert "1 file was not indexed (see above)." in res.stderr
    assert [d["path"] for d in cli.json("docs")] == [str(root.resolve() / "ok.md")]
