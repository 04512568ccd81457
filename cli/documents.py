"""Document commands: add (index files and folders as shared knowledge) and
docs (list what is indexed). Each parses, calls the engine, renders."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from memory import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP
from memory.config import SYSTEM_PROFILE

if TYPE_CHECKING:
    from memory import AddReport, Document

from . import render
from .app import Bounded, DbOption, JsonOption, ProfileOption, command
from .commands import open_memory


def display_path(path: str) -> str:
    """Relative to the current folder when under it, else with ``~`` for home;
    control characters in a name are shown escaped, never sent to the terminal."""
    if not path.isprintable():
        path = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in path)
    cwd = os.getcwd()
    if path.startswith(cwd.rstrip(os.sep) + os.sep):
        return os.path.relpath(path, cwd)
    home = str(Path.home())
    if home != os.sep and path.startswith(home.rstrip(os.sep) + os.sep):
        return "~" + path[len(home) :]
    return path


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(report: AddReport, seconds: float) -> str:
    done = [f"{report.new} new", f"{report.changed} changed"]
    rest = f"{report.unchanged + report.touched} unchanged"
    if report.touched:
        rest += f" ({report.touched} touched, same content)"
    if report.dry_run:
        drop = f"; would remove {_plural(report.removed, 'file')}" if report.removed else ""
        return (
            f"Would index {_plural(report.new + report.changed, 'file')} into {report.profile} "
            f"({', '.join(done)}){drop}; {rest}. Nothing was written."
        )
    line = (
        f"Added {_plural(report.chunks_added, 'chunk')} from "
        f"{_plural(report.new + report.changed, 'file')} into {report.profile} "
        f"({', '.join(done)}); {rest}"
    )
    if report.removed:
        line += f"; removed {_plural(report.removed, 'deleted file')}"
    if report.chunks_removed:
        line += f"; replaced or dropped {_plural(report.chunks_removed, 'old chunk')}"
    if report.bytes_indexed:
        line += f" ({_size(report.bytes_indexed)} in {seconds:.1f} s"
        if report.bytes_indexed >= 1e6:
            line += f", {report.bytes_indexed / 1e6 / max(seconds, 1e-6):.1f} MB/s"
        line += ")"
    return line + "."


@command("add")
def add(
    paths: Annotated[list[str], typer.Argument(help="Files and folders to index.")],
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            "-x",
            help="Skip paths matching this .gitignore-style pattern (repeatable).",
            metavar="PATTERN",
        ),
    ] = None,
    sync: Annotated[
        bool,
        typer.Option(
            "--sync", help="Also remove indexed files under PATH that are gone or now excluded."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Re-chunk every file, even unchanged ones.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would change; write nothing.")
    ] = False,
    max_tokens: Annotated[
        int,
        typer.Option(
            "--max-tokens",
            help="Largest chunk, in tokens.",
            click_type=Bounded(32, 100_000, below="Invalid --max-tokens {value}: use at least 32."),
        ),
    ] = DEFAULT_MAX_TOKENS,
    overlap: Annotated[
        int,
        typer.Option(
            "--overlap",
            help="Tokens repeated where a long section is split.",
            click_type=Bounded(0, 50_000),
        ),
    ] = DEFAULT_OVERLAP,
    db: DbOption = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile", help="Add to this profile only (default: shared by every profile)."
        ),
    ] = None,
    as_json: JsonOption = False,
    follow_links: Annotated[
        bool,
        typer.Option(
            "--follow-links", help="Also follow symbolic links that lead out of the folders."
        ),
    ] = False,
) -> None:
    """Index documents (Markdown, text, reST, code, HTML, PDF) as shared knowledge.

    Files are split at headings, paragraphs and definitions; adding again only
    re-reads files that changed. .gitignore files are honoured.
    """
    target = profile or SYSTEM_PROFILE
    started = time.perf_counter()
    with open_memory(db, target) as mem:
        progress, update = render.progress_callback("adding")
        with progress:
            report = mem.add(
                paths,
                exclude=exclude or (),
                sync=sync,
                force=force,
                dry_run=dry_run,
                max_tokens=max_tokens,
                overlap=overlap,
                progress=update,
                warn=lambda message: render.status(f"warning: {display_path(message)}"),
                follow_links=follow_links,
            )
    seconds = time.perf_counter() - started
    if as_json:
        render.emit_json(report.to_dict() | {"seconds": round(seconds, 3)})
        return
    con = render.out()
    if dry_run:
        for change in report.changes:
            con.print(f"{change['status']:<8} {display_path(change['path'])}", markup=False)
    con.print(summary(report, seconds), markup=False)
    if report.skipped:
        parts = ", ".join(f"{n} {reason}" for reason, n in sorted(report.skipped.items()))
        render.status(f"skipped: {parts}")
    if report.errors:
        were = "was" if len(report.errors) == 1 else "were"
        render.status(f"{_plural(len(report.errors), 'file')} {were} not indexed (see above).")
    if report.stale:
        render.status(
            f"{_plural(report.stale, 'indexed file')} under these paths "
            f"{'is' if report.stale == 1 else 'are'} gone or excluded now: "
            "add again with --sync to remove them."
        )


def documents_table(docs: list[Document]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, pad_edge=False, box=None)
    for name in ("chunks", "size", "updated", "profile"):
        table.add_column(name, no_wrap=True, justify="right" if name != "profile" else "left")
    table.add_column("path", overflow="fold")
    for doc in docs:
        table.add_row(
            str(doc.chunks),
            _size(doc.size),
            doc.updated_at[:16].replace("T", " "),
            Text(doc.profile),
            Text(display_path(doc.path)),  # a name with [brackets] is not markup
        )
    render.out().print(table)


@command("docs")
def docs(
    contains: Annotated[
        str | None, typer.Argument(help="Only documents whose path contains this text.")
    ] = None,
    db: DbOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """List indexed documents (shared and this profile's): path, chunks, when."""
    with open_memory(db, profile) as mem:
        found = mem.docs(contains=contains)
    if as_json:
        render.emit_json([d.to_dict() for d in found])
        return
    if not found:
        render.status("No documents indexed: add some with `mem add PATH`.")
        return
    documents_table(found)
    chunks = sum(d.chunks for d in found)
    size = sum(d.size for d in found)
    render.status(f"{_plural(len(found), 'document')}, {_plural(chunks, 'chunk')}, {_size(size)}.")
