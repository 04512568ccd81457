"""A chat's work off the main thread: warming what the first reply needs while
the user types, and forming memories after a reply is shown.

Formation runs on a connection of its own (a SQLite connection belongs to the
thread that opened it), with the same conversation, settings and model as the
assistant that answered, so a REPL shows the prompt again at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from memory.errors import MemError

if TYPE_CHECKING:
    from memory.assistant.results import Prepared
    from memory.formation.consolidation import Change
    from memory.models.embed import Embedder
    from memory.store import MemoryStore


class Forming(Protocol):
    """What formation needs of the assistant (memory.assistant.turn.Assistant),
    named here so this module does not import the one that imports it."""

    store: MemoryStore

    def fork(self, store: MemoryStore) -> Forming: ...

    def after_reply(self, prepared: Prepared) -> list[Change]: ...


def preload_model(model: str | None, api_base: str | None) -> None:
    """Start importing the model's SDK (or loading the offline model) in a thread."""
    from memory.models.llm import preload_in_background

    preload_in_background(model, api_base)


def warm_embedder(embedder: Embedder) -> None:
    """Load an offline embedder's table in a thread; a provider's embedder is
    left alone (warming it would be a paid request)."""
    if embedder.name.startswith("litellm:"):
        return

    def warm() -> None:
        try:
            embedder.embed(["warm up"])
        except Exception:  # an embedder's error is reported on first real use
            pass

    threading.Thread(target=warm, name="mem-embedder-preload", daemon=True).start()


def form_in_background(
    assistant: Forming,
    prepared: Prepared,
    on_done: Callable[[list[Change]], None],
    on_error: Callable[[MemError], None],
) -> threading.Thread:
    """Step 6 of ``prepared``'s turn in a daemon thread on its own connection;
    ``on_done`` gets the changes, ``on_error`` a named error. Join the thread
    before the next turn."""
    from memory.store import MemoryStore

    store = assistant.store

    def work() -> None:
        try:
            with MemoryStore.open(
                store.target,  # the same file, or the same server
                embedder=store.embedder.name,
                profile=store.profile,
                secrets=store.secrets,  # the config's policy, not the default
            ) as own:
                own.half_life_days = store.half_life_days
                on_done(assistant.fork(own).after_reply(prepared))
        except MemError as err:
            on_error(err)

    thread = threading.Thread(target=work, name="mem-formation", daemon=True)
    thread.start()
    return thread
