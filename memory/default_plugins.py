"""mem's own embedders, chat-model routes, document readers and storage backend,
registered through the same hooks as any plugin (:mod:`memory.plugins`).

Registering imports nothing heavy: each factory imports its module when called.
The hook functions are not decorated here: :mod:`memory.plugins` marks them as
hook implementations when it builds the plugin manager, so that answering a
built-in name needs no pluggy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memory.hookspecs import Register
    from memory.knowledge.chunking import Block
    from memory.models.embed import Embedder


def static_embedder() -> Embedder:
    from memory.models.static_embed import StaticEmbedder

    return StaticEmbedder()


def hashing_embedder() -> Embedder:
    from memory.models.embed import HashingEmbedder

    return HashingEmbedder(256)


def register_embedders(register: Register) -> None:
    # Every other hash-N, and litellm names, are families get_embedder knows.
    register("minilm-static-256", static_embedder)
    register("hash-256", hashing_embedder)


def builtin_path(chat: Any) -> Any:
    from memory.models.llm import builtin_path

    return builtin_path(chat)


def register_chat_models(register: Register) -> None:
    # Names with no prefix, or one mem does not know, take the same paths (route()).
    from memory.models.model_info import KNOWN_PREFIXES

    for prefix in KNOWN_PREFIXES:
        register(prefix, builtin_path)


def open_sqlite(path: Any = None, **options: Any) -> Any:
    """The SQLite implementation of the storage seam (memory.storage)."""
    from memory.storage.sqlite import SQLiteBackend

    return SQLiteBackend.open(path, **options)


def open_postgres(path: Any = None, **options: Any) -> Any:
    """The PostgreSQL implementation (memory.storage.postgres): ``path`` is the
    server URL. psycopg is imported here, on first use, never at start-up."""
    from memory.storage.postgres import PostgresBackend

    return PostgresBackend.open(str(path or ""), **options)


def register_storage_backends(register: Register) -> None:
    register("sqlite", open_sqlite)
    register("postgres", open_postgres)


class BuiltinReader:
    """One of mem's formats (``format`` is stored with the document)."""

    def __init__(self, fmt: str) -> None:
        self.format = fmt

    def __call__(self, path: Path) -> Iterator[Block]:
        from memory.knowledge.chunking import blocks_of

        return blocks_of(path, self.format)

    def __repr__(self) -> str:
        return f"BuiltinReader({self.format!r})"


def register_document_readers(register: Register) -> None:
    from memory.knowledge import files as f

    formats = {
        "markdown": f.MARKDOWN,
        "rst": f.RST,
        "html": f.HTML,
        "pdf": f.PDF,
        "code": f.CODE,
        "text": f.TEXT,
    }
    for fmt, suffixes in formats.items():
        reader = BuiltinReader(fmt)
        for suffix in sorted(suffixes):
            register(suffix, reader)
