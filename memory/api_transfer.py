"""The verbs of :class:`memory.Memory` that move memory in and out of the
database: export, import (with or without a model's fact keys). A mixin so the
facade stays one class while its module stays short."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from memory.config import Config, resolve_model
from memory.errors import UsageError
from memory.store import MemoryStore

if TYPE_CHECKING:
    from memory.eval.evaluation import StageProgress
    from memory.formation.episode_build import EpisodeReport
    from memory.formation.fact_keys import FactKeyReport
    from memory.lifecycle.transfer import ImportReport
    from memory.records import Memory as MemoryRecord

Progress = Callable[[int, int], None]


class TransferVerbs:
    store: MemoryStore
    config: Config

    # ------------------------------------------------------- moving memory
    def export(self, target: str | os.PathLike[str] | IO[str]) -> dict[str, int]:
        """Write everything as JSON Lines to an open text file or a new path
        (created 0600: an export is as private as the database)."""
        from memory.lifecycle.transfer import export

        if not isinstance(target, str | os.PathLike):
            return export(self.store, target)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)
            with open(fd, "w", encoding="utf-8") as handle:
                return export(self.store, handle)
        except OSError as err:
            raise UsageError(f"Cannot write {target}: {err.strerror}; pick another path.") from None

    def import_(
        self,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        on_conflict: str = "error",
        progress: Progress | None = None,
    ) -> ImportReport:
        """Import a JSONL file (path or open binary file); idempotent."""
        from memory.lifecycle.transfer import import_file
        from memory.lifecycle.transfer_import import check_conflict_policy

        check_conflict_policy(on_conflict)
        return import_file(self.store, source, progress=progress, on_conflict=on_conflict)

    import_file = import_

    def import_extracting(
        self,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        model: str | None = None,
        on_conflict: str = "error",
        progress: StageProgress | None = None,
    ) -> tuple[ImportReport, FactKeyReport]:
        """``mem import --extract``: import, then :meth:`index_fact_keys` over the
        same file (a stream is read once, bounded). No model is an error before
        anything is imported; ``progress`` gets ``importing`` then ``extracting``."""
        from memory.formation.fact_keys import require_model
        from memory.lifecycle.transfer_import import check_conflict_policy, read_bounded

        check_conflict_policy(on_conflict)
        name = require_model(resolve_model(model, self.config))
        if not isinstance(source, str | os.PathLike) and not source.seekable():
            source = io.BytesIO(read_bounded(source, "<stdin>"))

        def stage(label: str) -> Progress | None:
            return None if progress is None else lambda done, total: progress(label, done, total)

        report = self.import_(source, on_conflict=on_conflict, progress=stage("importing"))
        return report, self.index_fact_keys(source, model=name, progress=stage("extracting"))

    def index_fact_keys(
        self,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        model: str | None = None,
        progress: Progress | None = None,
    ) -> FactKeyReport:
        """``mem import --extract``: have a model index the facts of the
        conversations in ``source`` (imported before) as search keys."""
        from memory.formation import fact_keys

        name = fact_keys.require_model(resolve_model(model, self.config))
        complete = fact_keys.model_completer(name, api_base=self.config.api_base)
        convs = fact_keys.file_conversations(source)
        return fact_keys.extract_fact_keys(self.store, complete, convs, progress=progress)

    # ------------------------------------------------------------ episodes
    def episodes(
        self, *, conversation: str | None = None, limit: int | None = None
    ) -> list[MemoryRecord]:
        """Episodes (one per ended session), newest first; of one conversation if given."""
        from memory.formation.episode_build import episodes_of

        if conversation:
            self.store.require_conversation(conversation)
        found = list(reversed(episodes_of(self.store, conversation)))
        return found if limit is None else found[:limit]

    def build_episodes(
        self,
        conversations: list[str] | None = None,
        *,
        model: str | None = None,
        open_sessions: bool = False,
        progress: Progress | None = None,
    ) -> EpisodeReport:
        """Write the episodes of ``conversations`` (default: every one of the profile):
        by ``model`` when named (extraction where it fails), else offline by extraction."""
        from memory.formation.episode_build import build_episodes
        from memory.formation.fact_keys import model_completer

        if conversations is None:
            conversations = [str(c["id"]) for c in self.store.conversations(limit=1_000_000)]
        for conv in conversations:
            self.store.require_conversation(conv)
        complete = model_completer(model, api_base=self.config.api_base) if model else None
        return build_episodes(
            self.store,
            conversations,
            complete=complete,
            open_sessions=open_sessions,
            progress=progress,
        )

    def import_episodes(
        self,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        model: str | None = None,
        on_conflict: str = "error",
        progress: StageProgress | None = None,
    ) -> tuple[ImportReport, EpisodeReport]:
        """``mem import --episodes``: import, then build the episodes of the file's
        conversations (every session of an imported log has ended)."""
        from memory.formation.fact_keys import file_conversations
        from memory.lifecycle.transfer_import import check_conflict_policy, read_bounded

        check_conflict_policy(on_conflict)
        if not isinstance(source, str | os.PathLike) and not source.seekable():
            source = io.BytesIO(read_bounded(source, "<stdin>"))

        def stage(label: str) -> Progress | None:
            return None if progress is None else lambda done, total: progress(label, done, total)

        report = self.import_(source, on_conflict=on_conflict, progress=stage("importing"))
        convs = file_conversations(source)
        built = self.build_episodes(
            convs, model=model, open_sessions=True, progress=stage("episodes")
        )
        return report, built
