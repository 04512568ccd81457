"""One turn of the assistant: the memory pipeline around a model call.

    1. log the user's message (before anything can fail, so it is never lost)
    2. retrieve: instructions, profile facts, hybrid search for this message
    3. assemble the prompt under the token budget (memory.assistant.budget)
    4. call the model through memory.models.llm and stream the reply
    5. log the reply (also a partial one, when the stream is cancelled)
    6. after the reply: extract candidate facts from the buffer, consolidate
       them, and fold old turns into the running summary when needed

The conversation-memory strategy decides what the "recent window" and the
"summary" are: ``buffer`` (every turn), ``window`` (the last N turns),
``summary`` (only a running summary), ``summary-buffer`` (recent turns
verbatim, older ones folded into a stored summary past a token limit).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

from memory.assistant import episodes
from memory.assistant.budget import AssembledPrompt, assemble
from memory.assistant.examples import ExampleShelf
from memory.assistant.forming import Forming
from memory.assistant.results import Prepared, TurnResult
from memory.config import STRATEGIES, Config  # noqa: F401  (STRATEGIES: re-exported)
from memory.errors import MemError, NoModelError, UsageError
from memory.formation.consolidation import Change
from memory.models.local_model import is_local, no_model_help, require_installed
from memory.models.tokens import at_most, counter
from memory.records import Memory, Message
from memory.retrieval.search import Filters, search

if TYPE_CHECKING:
    from memory.lifecycle.retention import PruneReport
    from memory.models.llm import ChatModel
    from memory.store import MemoryStore

DEFAULT_BUDGET = 8192
RETRIEVE_LIMIT = 12
# Hits scoring under this share of the best hit are noise for a prompt (a
# vector-only neighbour such as "OK"); search itself still returns them.
RELEVANCE_FLOOR = 0.4
PROFILE_LIMIT = 40


# One settings type: the config file's (command-line options replace fields).
Settings = Config


class Assistant(Forming):
    """The turn pipeline over a :class:`MemoryStore` and an optional model."""

    def __init__(
        self,
        store: MemoryStore,
        settings: Settings | None = None,
        *,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or Settings()
        self.conversation: str | None = None
        self._model: ChatModel | None = None
        self._warn = warn or (lambda message: None)
        self._count = counter(self.settings.model)
        self._budget: int | None = None
        self._stable: tuple[int | None, list[Memory], list[Memory]] | None = None
        self._preloaded: set[str] = set()
        self._examples = ExampleShelf(store)
        self.tending: threading.Thread | None = None

    def start(
        self,
        conversation: str | None = None,
        *,
        resume: bool = False,
        need_model: bool = False,
        preload: bool = True,
        tend: bool = False,
    ) -> PruneReport | None:
        """What a chat does before its first turn: refuse early when ``need_model``
        and none is set, start loading the model in the background (a REPL passes
        ``preload=False`` and calls :meth:`preload` once its prompt shows), apply
        the retention policy (``[retention]``: what expired goes before it can be
        recalled) and open the conversation; with ``tend`` (the REPL), tending
        runs in the background when it last ran a day ago (memory.assistant.sleep).
        Returns what retention deleted."""
        if need_model and not self.settings.model:
            raise NoModelError(no_model_help())
        if preload:
            self.preload()
        report = None
        if self.settings.retention:
            from memory.lifecycle.retention import prune

            report = prune(self.store, self.settings.retention, dry_run=False)
        self.open_conversation(conversation, resume=resume)
        if tend:
            from memory.assistant.sleep import tend_in_background

            self.tending = tend_in_background(self.store, self.settings)
        return report

    def preload(self) -> None:
        """The model's SDK (or the offline model) and the embedder's table start
        loading in background threads, once each, so the first reply waits only
        for what is left; a failure is left for the real call to report."""
        from memory.assistant.background import preload_model, warm_embedder

        if "embedder" not in self._preloaded:
            self._preloaded.add("embedder")
            warm_embedder(self.store.embedder)
        model = self.settings.model
        if model and model not in self._preloaded:
            self._preloaded.add(model)
            preload_model(model, self.settings.api_base)

    def fork(self, store: MemoryStore) -> Assistant:
        """This assistant (settings, conversation, model) over another connection."""
        other = Assistant(store, self.settings, warn=self._warn)
        other.conversation = self.conversation
        other._model = self._model
        return other

    # ------------------------------------------------------------ conversation
    def open_conversation(self, conversation: str | None = None, *, resume: bool = False) -> str:
        """Use ``conversation``, or the last one with ``resume``, or a new one."""
        if conversation:
            self.store.require_conversation(conversation)
            self.conversation = conversation
        elif resume and (last := self.store.last_conversation()):
            self.conversation = last
        else:
            self.conversation = self.store.new_conversation()
        return self.conversation

    def new_conversation(self) -> str:
        self.end_conversation()
        self.conversation = self.store.new_conversation()
        return self.conversation

    def end_conversation(self) -> list[int]:
        """The conversation is over: its sessions become episodes (their ids)."""
        return episodes.close_episodes(self, conversation_over=True)

    # ------------------------------------------------------------------ model
    @property
    def model(self) -> ChatModel:
        if not self.settings.model:
            raise NoModelError(no_model_help())
        if self._model is None:
            from memory.models.llm import ChatModel, check_key

            if is_local(self.settings.model):
                require_installed(self.settings.model)
            check_key(self.settings.model, api_base=self.settings.api_base)
            self._model = ChatModel(self.settings.model, api_base=self.settings.api_base)
        return self._model

    def set_model(self, name: str) -> None:
        self.settings.model = name
        self._model = None
        self._budget = None
        self._count = counter(name)

    def budget(self) -> int:
        if self.settings.budget:
            return self.settings.budget
        if self._budget is None:
            window = self.model.context_window() if self.settings.model else None
            self._budget = window or DEFAULT_BUDGET
        return self._budget

    # ---------------------------------------------------------------- prompt
    def _recent_and_summary(self, exclude_id: int | None) -> tuple[list[Message], str | None]:
        if self.conversation is None:
            return [], None
        strategy = self.settings.memory
        summary, upto = self.store.summary(self.conversation)
        if strategy == "summary" and upto is not None:
            return [], summary
        if strategy in ("summary", "summary-buffer"):
            # No summary yet, or a forget dropped it (memory.lifecycle.forgetting): the
            # turns not folded in stand in for it until the next fold.
            msgs = self.store.messages(self.conversation, after_id=upto)
        elif strategy == "window":
            msgs = self.store.messages(self.conversation, limit=self.settings.window * 2 + 1)
            summary = None
        else:
            msgs = self.store.messages(self.conversation)
            summary = None
        msgs = [m for m in msgs if m.id != exclude_id]
        if strategy == "window":
            msgs = msgs[-self.settings.window * 2 :]
        return msgs, summary

    def _stable_part(self) -> tuple[list[Memory], list[Memory]]:
        """Standing instructions and profile facts, re-read only when the audit
        trail has moved (every add, update, supersede and forget writes to it),
        so a turn does not list them again when nothing changed."""
        version = self.store.backend.change_mark(self.store.scope)
        self._examples.refresh(version)  # any examples? (memory.assistant.examples)
        if self._stable is None or self._stable[0] != version:
            instructions = self.store.list_memories(kind="instruction")
            # Facts about the user; fact keys of imported conversations (about
            # other people) are found by search instead.
            profile = [
                m
                for m in self.store.list_memories(kind="fact", limit=PROFILE_LIMIT * 2)
                if m.source != "fact-key"
            ][:PROFILE_LIMIT]
            self._stable = (version, instructions, profile)
        return self._stable[1], self._stable[2]

    def build_prompt(self, text: str, *, message_id: int | None = None) -> AssembledPrompt:
        """Steps 2–3 of a turn (no logging, no model): used by --show-prompt."""
        recent, summary = self._recent_and_summary(message_id)
        in_window = {m.id for m in recent} | ({message_id} if message_id else set())
        instructions, profile = self._stable_part()
        profile_ids = {m.id for m in profile}
        # What the prompt already holds is left out inside the search, so the
        # search asks for the same few hits however long the window grows.
        filters = Filters(
            exclude_kinds=("instruction", "example"),
            exclude_ids=tuple(sorted(profile_ids)),
            exclude_messages=tuple(sorted(in_window)),
        )
        hits = search(self.store, text, limit=RETRIEVE_LIMIT, filters=filters)
        if hits:
            floor = hits[0].score * RELEVANCE_FLOOR
            hits = [h for h in hits if h.score >= floor]
        budget = self.budget()
        examples, block = self._examples.block(text, self.settings.example_tokens, self._count)
        return assemble(
            current=text,
            count=self._count,
            bound=at_most,
            budget=budget,
            reserve=min(self.settings.reply_tokens, budget // 4),
            instructions=instructions,
            profile=profile,
            retrieved=hits,
            summary=summary,
            recent=recent,
            examples=[(e.input, e.output) for e in examples],
            examples_text=block,
            example_ids=[e.id for e in examples],
        )

    def prepare(self, text: str) -> Prepared:
        """Steps 1–3: log the message first, then retrieve and assemble."""
        text = text.strip()
        if not text:
            raise UsageError("Empty message: type something, or pipe text into `mem ask`.")
        if self.conversation is None:
            self.open_conversation()
        assert self.conversation is not None
        message_id = self.store.log_message(self.conversation, "user", text)
        prompt = self.build_prompt(text, message_id=message_id)
        return Prepared(text, message_id, prompt)

    # ------------------------------------------------------------------ reply
    def stream_reply(self, prepared: Prepared, sink: list[str]) -> Generator[str, None, None]:
        """Steps 4–5: stream the reply; the text so far is logged even when the
        stream is cancelled (``close()``/Ctrl-C) or breaks off."""
        assert self.conversation is not None
        complete = False
        try:
            prompt = prepared.prompt
            for chunk in self.model.stream(prompt.messages, sections=prompt.sections):
                sink.append(chunk)
                yield chunk
            complete = True
        finally:
            reply = "".join(sink)
            if reply.strip():
                self.store.log_message(
                    self.conversation,
                    "assistant",
                    reply,
                    metadata={} if complete else {"interrupted": True},
                )

    def after_reply(self, prepared: Prepared) -> list[Change]:
        """Step 6: count the uses of what the prompt held, its examples too (one
        batched update, off the reply's path; tending turns use into
        importance), implicit formation and summary folding (after the reply)."""
        prompt = prepared.prompt
        used = [h.id for h in prompt.memories_used] + [m.id for m in prompt.profile_used]
        self.store.touch(used + prompt.examples_used)
        changes: list[Change] = []
        if self.settings.extraction:
            changes = self.extract_and_consolidate(prepared.message_id)
        if self.settings.memory in ("summary", "summary-buffer"):
            self.fold_summary()
        episodes.close_episodes(self)  # a session that ended before an idle gap
        return changes

    def after_reply_in_background(
        self,
        prepared: Prepared,
        on_done: Callable[[list[Change]], None],
        on_error: Callable[[MemError], None],
    ) -> threading.Thread:
        """Step 6 in a thread on a connection of its own (memory.assistant.background)."""
        from memory.assistant.background import form_in_background

        return form_in_background(self, prepared, on_done, on_error)

    def turn(
        self,
        text: str,
        *,
        on_chunk: Callable[[str], None] | None = None,
        on_reply: Callable[[str], None] | None = None,
    ) -> TurnResult:
        """A whole turn; ``on_chunk`` receives the reply as it streams and
        ``on_reply`` the whole of it before memories are formed. An exception
        (Ctrl-C) in either ends the stream, the partial reply logged."""
        prepared = self.prepare(text)
        sink: list[str] = []
        replies = self.stream_reply(prepared, sink)
        try:
            for chunk in replies:
                if on_chunk:
                    on_chunk(chunk)
        finally:
            replies.close()
        if on_reply:
            on_reply("".join(sink))
        assert self.conversation is not None
        changes = self.after_reply(prepared)
        return TurnResult(
            "".join(sink), self.conversation, prepared.prompt, changes, self.model.usage
        )
