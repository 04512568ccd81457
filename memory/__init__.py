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

from memory.api import Memory, MemoryDetail
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
from memory.functions import assemble_prompt, chunk_file, extract_facts, get_embedder, scan_secrets
from memory.records import Event, Hit, Message
from memory.records import Memory as MemoryRecord  # the row; `Memory` is the open database
from memory.store import MemoryStore

if TYPE_CHECKING:
    from memory.assistant.budget import AssembledPrompt
    from memory.assistant.turn import Assistant, Settings, TurnResult
    from memory.eval.evaluation import EvalReport
    from memory.eval.evaluation import run_eval as evaluate
    from memory.formation.extraction import Candidate
    from memory.formation.fact_keys import FactKeyReport
    from memory.knowledge.chunking import Chunk
    from memory.knowledge.documents import AddReport, Document
    from memory.lifecycle.forgetting import ForgetReport
    from memory.lifecycle.retention import PruneReport
    from memory.lifecycle.transfer import ImportReport
    from memory.models.embed import Embedder
    from memory.privacy.secrets_gate import GateResult

# name -> (module, attribute): imported on first use (see the module docstring)
_LAZY: dict[str, tuple[str, str]] = {
    "Assistant": ("assistant.turn", "Assistant"),
    "Settings": ("assistant.turn", "Settings"),
    "TurnResult": ("assistant.turn", "TurnResult"),
    "AssembledPrompt": ("assistant.budget", "AssembledPrompt"),
    "Chunk": ("knowledge.chunking", "Chunk"),
    "AddReport": ("knowledge.documents", "AddReport"),
    "Document": ("knowledge.documents", "Document"),
    "Embedder": ("models.embed", "Embedder"),
    "EvalReport": ("eval.evaluation", "EvalReport"),
    "evaluate": ("eval.evaluation", "run_eval"),
    "Candidate": ("formation.extraction", "Candidate"),
    "FactKeyReport": ("formation.fact_keys", "FactKeyReport"),
    "ForgetReport": ("lifecycle.forgetting", "ForgetReport"),
    "PruneReport": ("lifecycle.retention", "PruneReport"),
    "GateResult": ("privacy.secrets_gate", "GateResult"),
    "ImportReport": ("lifecycle.transfer", "ImportReport"),
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
    "TurnResult",
    "Config",
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
    "GateResult",
    "AssembledPrompt",
    "Chunk",
    "Embedder",
    "ForgetReport",
    "ImportReport",
    "AddReport",
    "Document",
    "PruneReport",
    "EvalReport",
    "FactKeyReport",
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
