"""Tending with what it needs from above (memory.lifecycle.tending sits below
formation and the assistant): formation's judge of duplicates and the running
summary's fold; and a chat's run of it in the background, at most once a day.

The fold is the offline extract (no model call): tending must not spend a
provider's tokens unasked, and the next turn of that conversation folds with
the model anyway. Episodes plug in through ``Tenders.episodes``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from memory.assistant.summary import fold_summary
from memory.config import Config
from memory.errors import MemError
from memory.formation.consolidation import DUPLICATES
from memory.lifecycle.tending import Tenders, TendReport, due, tend
from memory.models.tokens import counter

if TYPE_CHECKING:
    from memory.store import MemoryStore


def tenders(store: MemoryStore, config: Config) -> Tenders:
    """The judge and the summary fold over ``store``."""
    count = counter(config.model)

    def refold(conversation: str) -> bool:
        return fold_summary(store, conversation, config, count, None, lambda _: None)

    # Episodes (memory.formation.episodes) plug in here: Tenders(..., episodes=HOOK),
    # HOOK an EpisodeHook (memory.lifecycle.tending_plan) that lists and rebuilds.
    return Tenders(DUPLICATES, refold)


def run(store: MemoryStore, config: Config | None = None, *, apply: bool = False) -> TendReport:
    """``mem tend``: plan, and with ``apply`` carry out, one run."""
    config = config or Config()
    return tend(store, tenders(store, config), config, apply=apply)


def tend_in_background(store: MemoryStore, config: Config) -> threading.Thread | None:
    """A chat's tending: when the last run is a day old (or never was), one run
    in a daemon thread on a connection of its own; errors are left for the
    next run. None when not due."""
    if not due(store):
        return None
    from memory.store import MemoryStore

    def work() -> None:
        try:
            with MemoryStore.open(
                store.target,
                embedder=store.embedder.name,
                profile=store.profile,
                secrets=store.secrets,
            ) as own:
                if due(own):  # another chat may have tended meanwhile
                    run(own, config, apply=True)
        except MemError:
            pass

    thread = threading.Thread(target=work, name="mem-tending", daemon=True)
    thread.start()
    return thread
