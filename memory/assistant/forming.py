"""What a turn forms after the reply: candidate facts from the recent buffer
(the model's extraction, or the offline rules), consolidated into memory, and
the running summary folded; also explicit /remember and /instruct.

A mixin of :class:`memory.assistant.turn.Assistant`, apart so that the turn
module holds the prompt side of a turn and this one the memory it leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from memory.assistant.summary import fold_summary
from memory.config import Config
from memory.errors import ExtractionError, MemError, SecretRefusedError, UsageError
from memory.formation.consolidation import Change, consolidate, new_batch
from memory.formation.extraction import Candidate, extract_rules, extract_with_model
from memory.models.local_model import is_local
from memory.records import Message

if TYPE_CHECKING:
    from memory.models.llm import ChatModel
    from memory.store import MemoryStore


class Forming:
    """Formation for the :class:`~memory.assistant.turn.Assistant` it is mixed into."""

    store: MemoryStore
    settings: Config
    conversation: str | None
    _warn: Callable[[str], None]
    _count: Callable[[str], int]

    @property
    def model(self) -> ChatModel:
        raise NotImplementedError  # the Assistant's

    def _buffer(self, limit: int = 6) -> list[Message]:
        assert self.conversation is not None
        return self.store.messages(self.conversation, limit=limit)

    def candidates(self, buffer: list[Message]) -> list[Candidate]:
        """Model extraction when a model is configured, else (or on failure) rules.

        The embedded local model is a small base model that cannot write the JSON, so
        it gets the offline rules too (and no wasted seconds of generation)."""
        chat = [{"role": m.role, "content": m.content} for m in buffer]
        if self.settings.model and not is_local(self.settings.model):
            try:
                known = [m.content for m in self.store.list_memories(kind="fact", limit=30)]
                return extract_with_model(
                    lambda msgs: self.model.complete(msgs, json_schema=None), chat, known
                )
            except (ExtractionError, MemError) as err:
                self._warn(f"model extraction failed ({err}); used the offline rules instead")
        return extract_rules(chat)

    def extract_and_consolidate(self, message_id: int | None) -> list[Change]:
        if self.conversation is None:
            return []
        buffer = self._buffer()
        batch = new_batch()
        changes: list[Change] = []
        for cand in self.candidates(buffer):
            source = message_id
            if cand.source_index is not None and 0 <= cand.source_index < len(buffer):
                source = buffer[cand.source_index].id
            try:
                change = consolidate(
                    self.store,
                    cand,
                    source_message_id=source,
                    conversation=self.conversation,
                    batch=batch,
                )
            except SecretRefusedError:  # secrets = "refuse": skip this one fact
                shown = cand.gated("redact")[0].text
                self._warn(f'not remembered, it holds a secret (secrets = "refuse"): {shown}')
                continue
            changes.append(change)
        return changes

    def remember(self, text: str, *, kind: str = "fact") -> Change:
        """Explicit formation from the REPL (/remember, /instruct), consolidated."""
        cand = Candidate(text=text.strip(), kind=kind, importance=0.8, confidence=1.0)
        if not cand.text:
            raise UsageError(
                f"Nothing to {'instruct' if kind == 'instruction' else 'remember'}: give some text."
            )
        return consolidate(self.store, cand, conversation=self.conversation, actor="user")

    # ---------------------------------------------------------------- summary
    def fold_summary(self) -> bool:
        """Fold turns older than the window into the stored running summary once
        the unsummarised buffer passes the token limit (``summary``: always)."""
        assert self.conversation is not None

        def complete(messages: list[dict[str, str]]) -> str:
            return self.model.complete(messages)  # a model error: kept an extract

        capable = self.settings.model and not is_local(self.settings.model)  # see candidates()
        return fold_summary(
            self.store,
            self.conversation,
            self.settings,
            self._count,
            complete if capable else None,
            self._warn,
        )
