"""``mem copy SRC DST``: a whole store into another (SQLite ↔ PostgreSQL).
Parses, calls :func:`memory.copy_store`, renders."""

from __future__ import annotations

from typing import Annotated

import typer

import memory

from . import render
from .app import JsonOption, command


@command("copy")
def copy(
    source: Annotated[
        str, typer.Argument(help="The store to read: a file or a postgresql:// URL.")
    ],
    target: Annotated[
        str, typer.Argument(help="The store to write (created when missing; merged into if not).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Copy every profile of SRC into DST, losslessly (export + import).

    Run it again after an interruption to finish: what DST holds already is
    skipped, never added twice. A DST with other data is merged into.
    """
    progress, update = render.progress_callback("copying")
    with progress:
        report = memory.copy_store(source, target, progress=update)
    if as_json:
        render.emit_json(report.to_dict())
        return
    render.out().print(
        f"Copied {len(report.profiles)} profiles from {report.source} to {report.target}: "
        f"{report.messages_added} messages ({report.messages_skipped} already there), "
        f"{report.memories_added} memories ({report.memories_skipped} already there), "
        f"{report.documents_added} documents in {report.seconds:.1f} s."
    )
