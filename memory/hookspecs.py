"""The four plugin hooks (pluggy, project name ``mem``), in the style of ``llm``.

Each hook is called with one ``register`` callback and returns nothing: a plugin
calls ``register(name, factory)`` once per thing it offers. Factories are called
only when the thing is used, so registering costs no import. Importing this
module imports pluggy: :mod:`memory.plugins` does it only when a registry is
first asked, never at ``mem --help``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("mem")
hookimpl = pluggy.HookimplMarker("mem")

Register = Callable[[str, Callable[..., Any]], None]


@hookspec
def register_embedders(register: Register) -> None:
    """``register(name, factory)``: ``factory()`` returns an Embedder (``name``,
    ``dim``, a multiple of 8, ``embed(texts)``); ``name`` is what ``--embedder``
    and the database's ``meta`` table call it, so the embedder's own ``name``
    should be the same."""


@hookspec
def register_chat_models(register: Register) -> None:
    """``register(prefix, factory)``: models named ``prefix`` or ``prefix/…`` are
    answered by ``factory(chat)``, given the :class:`memory.models.llm.ChatModel` (its
    ``name``, ``api_base``, ``temperature``…); it returns an object with
    ``stream(messages) -> Iterator[str]`` (and optionally ``preload()`` and a
    ``context_window`` in tokens)."""


@hookspec
def register_storage_backends(register: Register) -> None:
    """``register(name, factory)``: ``factory(path, **options)`` opens a store
    (``sqlite`` is mem's own: :meth:`memory.store.MemoryStore.open`)."""


@hookspec
def register_document_readers(register: Register) -> None:
    """``register(suffix, reader)``: ``mem add`` reads files ending in ``suffix``
    (``".toy"``) with ``reader(path)``, which returns the text (read as plain
    text: paragraphs at blank lines) or yields :class:`memory.knowledge.chunking.Block`
    objects (numbered lines, heading trails) for the chunker."""
