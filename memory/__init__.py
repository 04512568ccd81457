"""mem's memory engine: a Python API of its own (the CLI is one client).

>>> from memory import Memory
>>> with Memory.open("mem.db") as mem:          # doctest: +SKIP
...     mem.remember("My dog is called Rex")
...     hits = mem.search("dog name")

README's "Python API" shows the rest. What the CLI does is one method of
:class:`Memory` per command; the stateless functions need no database. Heavier
names (the assistant, the reports) load on first use, so ``import memory``
stays as cheap as ``mem --help`` needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from memory.config import Config
from memory.errors import (
    ConfigError,
    DatabaseBusyError,
    DatabaseError,
    EmbedderMismatchError,
    InvalidInputError,
    MemError,
    ModelError,
    NoModelError,
    NotFoundError,
    ScrubPendingError,
    SecretRefusedError,
    UsageError,
)
from memory.functions import (
    assemble_prompt,
    chunk_file,
    evaluate,
    extract_facts,
    get_embedder,
    resolve_chat_model,
    scan_secrets,
)
from memory.records import Event, Hit, Message
from memory.records import Memory as MemoryRecord  # the row; `Memory` is the open database

if TYPE_CHECKING:
    from memory.api import Memory, MemoryDetail
    from memory.assistant.budget import AssembledPrompt
    from memory.assistant.history import InputHistory
    from memory.assistant.results import Prepared, TurnResult
    from memory.assistant.turn import Assistant, Settings
    from memory.database import (
        About,
        about,
        conversation_ids,
        database_error,
        memory_ids,
        profile_names,
    )
    from memory.database import decrypt as decrypt_database
    from memory.database import encrypt as encrypt_database
    from memory.eval.evaluation import EvalReport
    from memory.formation.consolidation import Change
    from memory.formation.extraction import Candidate
    from memory.formation.fact_keys import FactKeyReport
    from memory.knowledge.chunking import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP, Chunk
    from memory.knowledge.documents import AddReport, Document
    from memory.lifecycle.copy import CopyReport, copy_store
    from memory.lifecycle.forgetting import ForgetReport
    from memory.lifecycle.retention import PruneReport
    from memory.lifecycle.transfer import ImportReport
    from memory.models.embed import Embedder
    from memory.privacy.secrets_gate import GateResult
    from memory.storage.postgres.admin import add_member as server_add_member
    from memory.storage.postgres.admin import grant as server_grant
    from memory.storage.postgres.admin import init as server_init
    from memory.storage.postgres.admin import scrub as server_scrub
    from memory.store import MemoryStore

# name -> (module, attribute): imported on first use (see the module docstring)
_LAZY: dict[str, tuple[str, str]] = {
    # the open database: its module imports the store and the seam (not on `mem --help`)
    "Memory": ("api", "Memory"),
    "MemoryDetail": ("api", "MemoryDetail"),
    "MemoryStore": ("store", "MemoryStore"),
    "Assistant": ("assistant.turn", "Assistant"),
    "Settings": ("assistant.turn", "Settings"),
    "TurnResult": ("assistant.results", "TurnResult"),
    "Prepared": ("assistant.results", "Prepared"),
    "InputHistory": ("assistant.history", "InputHistory"),
    "AssembledPrompt": ("assistant.budget", "AssembledPrompt"),
    "Change": ("formation.consolidation", "Change"),
    "Chunk": ("knowledge.chunking", "Chunk"),
    "DEFAULT_MAX_TOKENS": ("knowledge.chunking", "DEFAULT_MAX_TOKENS"),
    "DEFAULT_OVERLAP": ("knowledge.chunking", "DEFAULT_OVERLAP"),
    "About": ("database", "About"),
    "about": ("database", "about"),
    "conversation_ids": ("database", "conversation_ids"),
    "database_error": ("database", "database_error"),
    "decrypt_database": ("database", "decrypt"),
    "encrypt_database": ("database", "encrypt"),
    "memory_ids": ("database", "memory_ids"),
    "profile_names": ("database", "profile_names"),
    "AddReport": ("knowledge.documents", "AddReport"),
    "Document": ("knowledge.documents", "Document"),
    "Embedder": ("models.embed", "Embedder"),
    "EvalReport": ("eval.evaluation", "EvalReport"),
    "Candidate": ("formation.extraction", "Candidate"),
    "FactKeyReport": ("formation.fact_keys", "FactKeyReport"),
    "ForgetReport": ("lifecycle.forgetting", "ForgetReport"),
    "PruneReport": ("lifecycle.retention", "PruneReport"),
    "GateResult": ("privacy.secrets_gate", "GateResult"),
    "ImportReport": ("lifecycle.transfer", "ImportReport"),
    "copy_store": ("lifecycle.copy", "copy_store"),
    "CopyReport": ("lifecycle.copy", "CopyReport"),
    # the owner's setup of a shared PostgreSQL server (`mem admin`); psycopg loads on use
    "server_init": ("storage.postgres.admin", "init"),
    "server_add_member": ("storage.postgres.admin", "add_member"),
    "server_grant": ("storage.postgres.admin", "grant"),
    "server_scrub": ("storage.postgres.admin", "scrub"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'memory' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value
    return value


__all__ = [
    # stateful
    "Memory",
    "MemoryDetail",
    "MemoryStore",
    "Assistant",
    "Settings",
    "Prepared",
    "TurnResult",
    "InputHistory",
    "Config",
    "resolve_chat_model",
    # the database file, unopened
    "encrypt_database",
    "server_init",
    "server_add_member",
    "server_grant",
    "server_scrub",
    "decrypt_database",
    "database_error",
    "about",
    "About",
    "profile_names",
    "memory_ids",
    "conversation_ids",
    "copy_store",
    # stateless
    "extract_facts",
    "scan_secrets",
    "assemble_prompt",
    "chunk_file",
    "get_embedder",
    "evaluate",
    # records and reports
    "MemoryRecord",
    "Hit",
    "Event",
    "Message",
    "Candidate",
    "Change",
    "GateResult",
    "AssembledPrompt",
    "Chunk",
    "Embedder",
    "ForgetReport",
    "ImportReport",
    "CopyReport",
    "AddReport",
    "Document",
    "PruneReport",
    "EvalReport",
    "FactKeyReport",
    # constants
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_OVERLAP",
    # errors (all in memory.errors; these are the ones a caller catches)
    "MemError",
    "UsageError",
    "InvalidInputError",
    "NotFoundError",
    "SecretRefusedError",
    "ConfigError",
    "DatabaseError",
    "DatabaseBusyError",
    "ScrubPendingError",
    "EmbedderMismatchError",
    "ModelError",
    "NoModelError",
]
__version__ = "0.1.0"
