"""Documents as shared semantic memory: ``mem add`` and ``mem docs``.

Files are split into chunks (:mod:`memory.knowledge.chunking`), and each chunk is a
memory of kind ``document`` in the ``system`` namespace (every profile reads
it) or in one profile, with metadata that search can filter on and the
assistant cites: ``path``, ``heading``, ``line_start``, ``line_end``,
``mtime``, ``hash`` (the file's SHA-256) and ``chunk`` (its number in the
file). The ``documents`` table remembers each file's hash, size, mtime and
chunk count, which makes adding again incremental:

- same size and mtime: skipped without reading the file;
- same hash (the file was touched): only its mtime is updated;
- new or changed: chunked, and the old chunks replaced in one transaction;
- gone (or now excluded) under a folder that is added again: reported, and
  removed with ``sync``.

Files are read one at a time and their chunks embedded in batches across files
(one embedding call per batch, with no lock held) and written in one
transaction per batch, so memory stays bounded by the batch and the largest
single file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING

from memory.config import SYSTEM_PROFILE
from memory.errors import DatabaseError, MemError, UsageError
from memory.knowledge import indexing
from memory.knowledge.chunking import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP, chunk_file
from memory.knowledge.files import discover, path_key
from memory.knowledge.indexing import AddReport, Work, Writer, plan_file
from memory.models.tokens import counter
from memory.storage import Document, Scope

if TYPE_CHECKING:
    from memory.store import MemoryStore

__all__ = ["AddReport", "Document", "add_documents", "chunk_ids", "chunker_id", "documents"]

CHUNKER_VERSION = 1
Progress = Callable[[int, int], None]


def chunker_id(max_tokens: int, overlap: int) -> str:
    """Chunking settings, stored per file: a file chunked otherwise is redone."""
    return f"v{CHUNKER_VERSION}:{max_tokens}:{overlap}"


def pdf_supported() -> bool:
    import importlib.util

    return importlib.util.find_spec("pypdf") is not None


def documents(
    store: MemoryStore, *, profile: str | None = None, contains: str | None = None
) -> list[Document]:
    """Indexed files of one profile, or of every profile the store reads."""
    scope = Scope(profile) if profile else store.scope
    found = store.backend.documents(scope)
    return [d for d in found if not contains or contains in d.path]


def chunk_ids(store: MemoryStore, profile: str, path: str) -> list[int]:
    """Ids of the chunks of one indexed file (uses the partial expression index)."""
    return store.backend.document_chunks(Scope(profile), path)


def _remove(store: MemoryStore, profile: str, path: str, reason: str) -> int:
    """The file's row and its chunks (they derive from it), audited."""
    return store.backend.remove_document(Scope(profile), path, reason=reason)


def _under(path: str, roots: Sequence[Path]) -> bool:
    keys = [path_key(r) for r in roots]
    return any(path == k or path.startswith(k.rstrip(os.sep) + os.sep) for k in keys)


def _from_pypdf(err: Exception) -> bool:
    return type(err).__module__.split(".")[0] == "pypdf"


def _describe(err: Exception) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    if _from_pypdf(err):
        return f"unreadable PDF ({err})"
    return str(err)


def add_documents(
    store: MemoryStore,
    paths: Sequence[str | os.PathLike[str]],
    *,
    profile: str | None = None,
    exclude: Sequence[str] = (),
    sync: bool = False,
    force: bool = False,
    dry_run: bool = False,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap: int = DEFAULT_OVERLAP,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
    follow_links: bool = False,
) -> AddReport:
    """Index files and folders as document chunks (see the module docstring).

    ``profile`` defaults to the shared ``system`` namespace; it must be one the
    store reads. ``force`` re-chunks unchanged files; ``dry_run`` only reports;
    ``follow_links`` follows links that lead out of the folders given.
    """
    target = profile or SYSTEM_PROFILE
    if target not in store.readable_profiles():
        raise UsageError(
            f"Cannot add documents to profile {target!r} from profile {store.profile!r}: "
            f"pass --profile {target}."
        )
    if not paths:
        raise UsageError("Nothing to add: give files or folders, e.g. `mem add docs/`.")
    if max_tokens < 32:
        raise UsageError(f"Invalid --max-tokens {max_tokens}: use at least 32.")
    if not 0 <= overlap <= max_tokens // 2:
        raise UsageError(
            f"Invalid --overlap {overlap}: use 0 to {max_tokens // 2} (half of --max-tokens)."
        )
    roots: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise UsageError(f"No such file or folder: {raw}; check the path.")
        roots.append(path.resolve())
    say = warn or (lambda message: None)
    report = AddReport(profile=target, dry_run=dry_run)
    found, skipped = discover(roots, exclude=exclude, follow_links=follow_links)
    report.skipped.update(skipped)
    report.files = len(found)
    known = {d.path: d for d in documents(store, profile=target)}
    chunker = chunker_id(max_tokens, overlap)
    count = counter()
    writer = Writer(store, target, chunker, report, say)
    has_pdf = pdf_supported()
    seen: set[str] = set()
    for done, item in enumerate(found, 1):
        key = path_key(item.path)
        try:
            plan = plan_file(item, known.get(key), chunker, force, has_pdf)
            if plan.status == "skipped":
                report.skip(plan.reason)
            elif plan.status == "unchanged":
                report.unchanged += 1
                seen.add(key)
            elif plan.status == "touched":
                report.touched += 1
                seen.add(key)
                if not dry_run:
                    writer.touch(key, plan.size, plan.mtime)
            elif dry_run:
                seen.add(key)
                setattr(report, plan.status, getattr(report, plan.status) + 1)
                report.changes.append({"path": key, "status": plan.status, "chunks": None})
            else:
                seen.add(key)
                chunks = chunk_file(
                    item.path, item.format or "text", count, max_tokens=max_tokens, overlap=overlap
                )
                head = list(islice(chunks, indexing.BATCH_CHUNKS + 1))
                work = Work(item, key, plan.size, plan.mtime, plan.digest, plan.status, head)
                if len(head) <= indexing.BATCH_CHUNKS:
                    writer.add(work)
                else:
                    writer.stream(work, chain(head, chunks))
        except Exception as err:  # one unreadable file must not stop the rest
            readable = isinstance(err, OSError | MemError) and not isinstance(err, DatabaseError)
            if not (readable or _from_pypdf(err)):
                raise
            seen.add(key)  # a file that cannot be read now is not dropped from the index
            report.errors.append({"path": key, "error": _describe(err)})
            say(f"skipped {key}: {_describe(err)}")
        if writer.full:
            writer.flush()
        if progress:
            progress(done, len(found))
    writer.flush()
    for key in sorted(set(known) - seen):
        if not _under(key, roots):
            continue
        if not sync:
            report.stale += 1
            continue
        report.removed += 1
        report.changes.append({"path": key, "status": "removed", "chunks": 0})
        if not dry_run:
            report.chunks_removed += _remove(store, target, key, "document removed")
    if not dry_run and (report.chunks_added or report.chunks_removed):
        store.backend.checkpoint(store.scope)
    return report
