"""Writing indexed files: the batches of ``mem add`` (see
:mod:`memory.knowledge.documents`), through the storage seam.

Chunks of several files are embedded together with no lock held and written in
one transaction; a file too large for one batch is streamed. What to do with
each file (:func:`plan`) is decided from its stat, and its hash when that
changed, before anything is read.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

from memory import timeutil
from memory.errors import MemError, SecretRefusedError
from memory.knowledge.chunking import Chunk
from memory.knowledge.files import NOT_REGULAR, Found, file_hash, is_binary
from memory.privacy.secrets_gate import apply_record
from memory.storage import Document, DocumentInfo, NewEvent, Scope

if TYPE_CHECKING:
    from memory.store import MemoryStore

BATCH_CHUNKS = 256
BATCH_BYTES = 1 << 20
EMBED_BATCH = 256


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
class Work:
    found: Found
    key: str
    size: int
    mtime: float
    digest: str
    status: str
    chunks: list[Chunk]


def _iso(stamp: float) -> str:
    return timeutil.to_iso(datetime.fromtimestamp(stamp, UTC))


class Writer:
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
        self.scope = Scope(profile)
        self.chunker = chunker
        self.report = report
        self.works: list[Work] = []
        self.touches: list[tuple[float, int, str]] = []
        self.chunks = 0
        self.bytes = 0

    @property
    def full(self) -> bool:
        return self.chunks >= BATCH_CHUNKS or self.bytes >= BATCH_BYTES

    def add(self, work: Work) -> None:
        self.works.append(work)
        self.chunks += len(work.chunks)
        self.bytes += work.size

    def touch(self, key: str, size: int, mtime: float) -> None:
        self.touches.append((mtime, size, key))

    def _gated(self, work: Work) -> list[str] | None:
        """The chunks' texts as they will be stored (the secret gate applied);
        None, with the file reported, when the gate refuses one of them."""
        try:
            return [self._stored(work, c) for c in work.chunks]
        except SecretRefusedError as err:
            self._refused(work, err)
            return None

    def _stored(self, work: Work, chunk: Chunk) -> str:
        try:
            return self.store.stored_text(chunk.text, "document")
        except SecretRefusedError as err:
            where = f"lines {chunk.line_start}-{chunk.line_end}"
            if chunk.pages:
                where = f"pages {chunk.pages[0]}-{chunk.pages[1]}"
            raise SecretRefusedError(f"({where}): {err}") from None

    def _refused(self, work: Work, err: MemError) -> None:
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
        with store.backend.transaction(self.scope):
            for mtime, size, key in self.touches:
                store.backend.touch_document(self.scope, key, size=size, mtime=mtime)
            for work, texts in ready:
                pairs = list(zip(work.chunks, vectors[at : at + len(texts)], strict=True))
                at += len(texts)
                self._file(work, pairs)
        self.works, self.touches, self.chunks, self.bytes = [], [], 0, 0

    def stream(self, work: Work, chunks: Iterator[Chunk]) -> None:
        """A large file, a batch at a time: each batch is embedded with no lock
        held and its chunks written in a short transaction; a last one drops
        the file's old chunks and records it. Until then search may see old
        and new chunks side by side; if the add is interrupted, the next one
        sees the file changed and replaces both."""
        self.flush()
        store = self.store
        old = store.backend.document_chunks(self.scope, work.key)
        new: list[int] = []
        with store.backend.transaction(self.scope):  # an interrupted stream: "changed"
            store.backend.touch_document(self.scope, work.key, size=-1)
        try:
            while batch := list(islice(chunks, EMBED_BATCH)):
                texts = [self._stored(work, c) for c in batch]
                vectors = store.embedder.embed(texts)
                with store.backend.transaction(self.scope):
                    new += [self._chunk(work, c, v) for c, v in zip(batch, vectors, strict=True)]
            with store.backend.transaction(self.scope):
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

    def _file(self, work: Work, pairs: Iterable[tuple[Chunk, list[float]]]) -> None:
        try:
            with self.store.backend.transaction(self.scope):  # a savepoint: one file fails alone
                added, removed = self._write(work, pairs)
        except MemError as err:
            self._refused(work, err)
            return
        self._done(work, added, removed)

    def _done(self, work: Work, added: int, removed: int) -> None:
        report = self.report
        setattr(report, work.status, getattr(report, work.status) + 1)
        report.chunks_added += added
        report.chunks_removed += removed
        report.bytes_indexed += work.size
        report.changes.append({"path": work.key, "status": work.status, "chunks": added})

    def _write(self, work: Work, pairs: Iterable[tuple[Chunk, list[float]]]) -> tuple[int, int]:
        removed = self.store.delete_memories(
            self.store.backend.document_chunks(self.scope, work.key), reason="document changed"
        )
        added = sum(1 for chunk, vec in pairs if self._chunk(work, chunk, vec))
        self._record(work, added)
        return added, removed

    def _chunk(self, work: Work, chunk: Chunk, vec: list[float]) -> int:
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

    def _record(self, work: Work, added: int) -> None:
        """The file's row in ``documents`` and its audit event."""
        store, key = self.store, work.key
        info = DocumentInfo(
            key,
            work.found.format or "text",
            work.digest,
            work.size,
            work.mtime,
            added,
            self.chunker,
        )
        store.backend.put_document(self.scope, info, at=timeutil.now_iso())
        detail = {
            "document": key,
            "profile": self.profile,
            "status": work.status,
            "chunks": added,
            "hash": work.digest,
        }
        audit(store, self.scope, "add", detail)


@dataclass
class Plan:
    status: str  # new, changed, touched, unchanged or skipped
    size: int = 0
    mtime: float = 0.0
    digest: str = ""
    reason: str = ""


def plan_file(item: Found, row: Document | None, chunker: str, force: bool, has_pdf: bool) -> Plan:
    """Decide what to do with one file, reading it only when its stat changed."""
    st = item.path.stat()
    if not stat.S_ISREG(st.st_mode):  # replaced by a FIFO since the walk: never open it
        return Plan("skipped", reason=NOT_REGULAR)
    size, mtime = st.st_size, st.st_mtime
    same_chunker = row is not None and row.chunker == chunker and not force
    if same_chunker and row is not None and row.size == size and row.mtime == mtime:
        return Plan("unchanged", size, mtime, row.hash)
    if item.format == "pdf":
        if not has_pdf:
            return Plan("skipped", reason="pdf (pip install 'mem[pdf]')")
    elif is_binary(item.path):
        return Plan("skipped", reason="binary")
    digest = file_hash(item.path)
    if same_chunker and row is not None and row.hash == digest:
        return Plan("touched", size, mtime, digest)
    return Plan("changed" if row is not None else "new", size, mtime, digest)


def audit(store: MemoryStore, scope: Scope, event: str, detail: dict[str, Any]) -> None:
    """An event about a file (no one memory), gated like the store's events."""
    if store.secrets != "allow":  # a path is a stored string too; never refused here
        detail = apply_record({"d": detail}, "redact").record["d"]
    store.backend.add_event(scope, NewEvent(None, event, detail=detail))
