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
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory import timeutil
from memory.config import SYSTEM_PROFILE
from memory.errors import DatabaseError, MemError, SecretRefusedError, UsageError
from memory.knowledge.chunking import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP, Chunk, chunk_file
from memory.knowledge.files import NOT_REGULAR, Found, discover, file_hash, is_binary, path_key
from memory.models.tokens import counter
from memory.storage.sqlite.db import transaction

if TYPE_CHECKING:
    from memory.store import MemoryStore

CHUNKER_VERSION = 1
BATCH_CHUNKS = 256
BATCH_BYTES = 1 << 20
EMBED_BATCH = 256
Progress = Callable[[int, int], None]


@dataclass
class Document:
    """One indexed file (a row of ``documents``)."""

    path: str
    profile: str
    format: str
    hash: str
    size: int
    mtime: float
    chunks: int
    chunker: str
    added_at: str
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_DOC_COLUMNS = "path, profile, format, hash, size, mtime, chunks, chunker, added_at, updated_at"


@dataclass
class AddReport:
    """What one ``mem add`` did (or, with ``dry_run``, would do)."""

    profile: str
    files: int = 0
    new: int = 0
    changed: int = 0
    touched: int = 0
    unchanged: int = 0
    removed: int = 0
    stale: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    bytes_indexed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Work:
    found: Found
    key: str
    size: int
    mtime: float
    digest: str
    status: str
    chunks: list[Chunk]


def chunker_id(max_tokens: int, overlap: int) -> str:
    """Chunking settings, stored per file: a file chunked otherwise is redone."""
    return f"v{CHUNKER_VERSION}:{max_tokens}:{overlap}"


def pdf_supported() -> bool:
    import importlib.util

    return importlib.util.find_spec("pypdf") is not None


def _iso(stamp: float) -> str:
    return timeutil.to_iso(datetime.fromtimestamp(stamp, UTC))


def documents(
    store: MemoryStore, *, profile: str | None = None, contains: str | None = None
) -> list[Document]:
    """Indexed files of one profile, or of every profile the store reads."""
    profiles = (profile,) if profile else store.readable_profiles()
    sql = f"SELECT {_DOC_COLUMNS} FROM documents WHERE profile IN ({','.join('?' * len(profiles))})"
    params: list[Any] = list(profiles)
    if contains:
        sql += " AND instr(path, ?) > 0"
        params.append(contains)
    rows = store.conn.execute(sql + " ORDER BY path, profile", params).fetchall()
    return [Document(*r) for r in rows]


def chunk_ids(store: MemoryStore, profile: str, path: str) -> list[int]:
    """Ids of the chunks of one indexed file (uses the partial expression index)."""
    rows = store.conn.execute(
        "SELECT id FROM memories WHERE kind = 'document' AND profile = ? "
        "AND json_extract(metadata, '$.path') = ? ORDER BY id",
        [profile, path],
    ).fetchall()
    return [int(r[0]) for r in rows]


def _remove(store: MemoryStore, profile: str, path: str, reason: str) -> int:
    with transaction(store.conn):
        removed = store.delete_memories(chunk_ids(store, profile, path), reason=reason)
        store.conn.execute("DELETE FROM documents WHERE profile = ? AND path = ?", [profile, path])
        store._event(
            None, "forget", detail={"document": path, "profile": profile, "chunks": removed}
        )
    return removed


def _under(path: str, roots: Sequence[Path]) -> bool:
    keys = [path_key(r) for r in roots]
    return any(path == k or path.startswith(k.rstrip(os.sep) + os.sep) for k in keys)


class _Writer:
    """Chunks of several files, embedded together and written in one transaction.

    A file with more than ``BATCH_CHUNKS`` chunks is written on its own with
    :meth:`stream`: its chunks are embedded and inserted a batch at a time
    inside one transaction, so memory stays bounded whatever the file's size.
    """

    def __init__(
        self,
        store: MemoryStore,
        profile: str,
        chunker: str,
        report: AddReport,
        say: Callable[[str], None],
    ) -> None:
        self.say = say
        self.store = store
        self.profile = profile
        self.chunker = chunker
        self.report = report
        self.works: list[_Work] = []
        self.touches: list[tuple[float, int, str]] = []
        self.chunks = 0
        self.bytes = 0

    @property
    def full(self) -> bool:
        return self.chunks >= BATCH_CHUNKS or self.bytes >= BATCH_BYTES

    def add(self, work: _Work) -> None:
        self.works.append(work)
        self.chunks += len(work.chunks)
        self.bytes += work.size

    def touch(self, key: str, size: int, mtime: float) -> None:
        self.touches.append((mtime, size, key))

    def _gated(self, work: _Work) -> list[str] | None:
        """The chunks' texts as they will be stored (the secret gate applied);
        None, with the file reported, when the gate refuses one of them."""
        try:
            return [self._stored(work, c) for c in work.chunks]
        except SecretRefusedError as err:
            self._refused(work, err)
            return None

    def _stored(self, work: _Work, chunk: Chunk) -> str:
        try:
            return self.store.stored_text(chunk.text, "document")
        except SecretRefusedError as err:
            where = f"lines {chunk.line_start}-{chunk.line_end}"
            if chunk.pages:
                where = f"pages {chunk.pages[0]}-{chunk.pages[1]}"
            raise SecretRefusedError(f"({where}): {err}") from None

    def _refused(self, work: _Work, err: MemError) -> None:
        """A file not indexed (the gate refused a chunk, or a write failed): said
        at once, with the file's name and the reason, and in the report."""
        self.report.errors.append({"path": work.key, "error": str(err)})
        sep = " " if str(err).startswith("(") else ": "
        self.say(f"refused {work.key}{sep}{err}")

    def flush(self) -> None:
        """Embed the batch (no lock held: a provider embedder is an HTTP call),
        then write it in one transaction."""
        store = self.store
        ready = [(w, texts) for w in self.works if (texts := self._gated(w)) is not None]
        flat = [t for _, texts in ready for t in texts]
        vectors: list[list[float]] = []
        for start in range(0, len(flat), EMBED_BATCH):
            vectors += store.embedder.embed(flat[start : start + EMBED_BATCH])
        at = 0
        with transaction(store.conn):
            store.conn.executemany(
                "UPDATE documents SET mtime = ?, size = ? WHERE path = ? AND profile = ?",
                [(*t, self.profile) for t in self.touches],
            )
            for work, texts in ready:
                pairs = list(zip(work.chunks, vectors[at : at + len(texts)], strict=True))
                at += len(texts)
                self._file(work, pairs)
        self.works, self.touches, self.chunks, self.bytes = [], [], 0, 0

    def stream(self, work: _Work, chunks: Iterator[Chunk]) -> None:
        """A large file, a batch at a time: each batch is embedded with no lock
        held and its chunks written in a short transaction; a last one drops
        the file's old chunks and records it. Until then search may see old
        and new chunks side by side; if the add is interrupted, the next one
        sees the file changed and replaces both."""
        self.flush()
        store = self.store
        old = chunk_ids(store, self.profile, work.key)
        new: list[int] = []
        with transaction(store.conn):  # an interrupted stream leaves the file "changed"
            store.conn.execute(
                "UPDATE documents SET size = -1 WHERE path = ? AND profile = ?",
                [work.key, self.profile],
            )
        try:
            while batch := list(islice(chunks, EMBED_BATCH)):
                texts = [self._stored(work, c) for c in batch]
                vectors = store.embedder.embed(texts)
                with transaction(store.conn):
                    new += [self._chunk(work, c, v) for c, v in zip(batch, vectors, strict=True)]
            with transaction(store.conn):
                removed = store.delete_memories(old, reason="document changed")
                self._record(work, len(new))
        except BaseException as err:
            if new:
                store.delete_memories(new, reason="document not indexed", actor="mem add")
            if isinstance(err, SecretRefusedError):
                self._refused(work, err)
                return
            raise
        self._done(work, len(new), removed)

    def _file(self, work: _Work, pairs: Iterable[tuple[Chunk, list[float]]]) -> None:
        try:
            with transaction(self.store.conn):  # a savepoint: one file fails alone
                added, removed = self._write(work, pairs)
        except MemError as err:
            self._refused(work, err)
            return
        self._done(work, added, removed)

    def _done(self, work: _Work, added: int, removed: int) -> None:
        report = self.report
        setattr(report, work.status, getattr(report, work.status) + 1)
        report.chunks_added += added
        report.chunks_removed += removed
        report.bytes_indexed += work.size
        report.changes.append({"path": work.key, "status": work.status, "chunks": added})

    def _write(self, work: _Work, pairs: Iterable[tuple[Chunk, list[float]]]) -> tuple[int, int]:
        removed = self.store.delete_memories(
            chunk_ids(self.store, self.profile, work.key), reason="document changed"
        )
        added = sum(1 for chunk, vec in pairs if self._chunk(work, chunk, vec))
        self._record(work, added)
        return added, removed

    def _chunk(self, work: _Work, chunk: Chunk, vec: list[float]) -> int:
        """Insert one chunk; ``vec`` embeds its text as stored (after the gate)."""
        meta: dict[str, Any] = {
            "path": work.key,
            "heading": chunk.heading,
            "line_start": chunk.line_start,
            "line_end": chunk.line_end,
            "mtime": _iso(work.mtime),
            "hash": work.digest,
            "chunk": chunk.index,
            "format": work.found.format,
        }
        if chunk.pages:
            meta["page_start"], meta["page_end"] = chunk.pages
        return self.store.add_memory(
            chunk.text,
            kind="document",
            source="document",
            profile=self.profile,
            external_id=f"{work.key}:{chunk.line_start}-{chunk.line_end}",
            metadata=meta,
            stored_vector=vec,
            audit=False,
        )

    def _record(self, work: _Work, added: int) -> None:
        """The file's row in ``documents`` and its audit event."""
        store, key = self.store, work.key
        now = timeutil.now_iso()
        store.conn.execute(
            "INSERT INTO documents(profile, path, format, hash, size, mtime, chunks, chunker, "
            "added_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(profile, path) DO UPDATE SET format = excluded.format, "
            "hash = excluded.hash, size = excluded.size, mtime = excluded.mtime, "
            "chunks = excluded.chunks, chunker = excluded.chunker, "
            "updated_at = excluded.updated_at",
            [
                self.profile,
                key,
                work.found.format,
                work.digest,
                work.size,
                work.mtime,
                added,
                self.chunker,
                now,
                now,
            ],
        )
        store._event(
            None,
            "add",
            detail={
                "document": key,
                "profile": self.profile,
                "status": work.status,
                "chunks": added,
                "hash": work.digest,
            },
        )


@dataclass
class _Plan:
    status: str  # new, changed, touched, unchanged or skipped
    size: int = 0
    mtime: float = 0.0
    digest: str = ""
    reason: str = ""


def _plan(item: Found, row: Document | None, chunker: str, force: bool, has_pdf: bool) -> _Plan:
    """Decide what to do with one file, reading it only when its stat changed."""
    st = item.path.stat()
    if not stat.S_ISREG(st.st_mode):  # replaced by a FIFO since the walk: never open it
        return _Plan("skipped", reason=NOT_REGULAR)
    size, mtime = st.st_size, st.st_mtime
    same_chunker = row is not None and row.chunker == chunker and not force
    if same_chunker and row is not None and row.size == size and row.mtime == mtime:
        return _Plan("unchanged", size, mtime, row.hash)
    if item.format == "pdf":
        if not has_pdf:
            return _Plan("skipped", reason="pdf (pip install 'mem[pdf]')")
    elif is_binary(item.path):
        return _Plan("skipped", reason="binary")
    digest = file_hash(item.path)
    if same_chunker and row is not None and row.hash == digest:
        return _Plan("touched", size, mtime, digest)
    return _Plan("changed" if row is not None else "new", size, mtime, digest)


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
    writer = _Writer(store, target, chunker, report, say)
    has_pdf = pdf_supported()
    seen: set[str] = set()
    for done, item in enumerate(found, 1):
        key = path_key(item.path)
        try:
            plan = _plan(item, known.get(key), chunker, force, has_pdf)
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
                head = list(islice(chunks, BATCH_CHUNKS + 1))
                work = _Work(item, key, plan.size, plan.mtime, plan.digest, plan.status, head)
                if len(head) <= BATCH_CHUNKS:
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
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return report
