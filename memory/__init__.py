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

from .api import Memory, MemoryDetail
from .config import Config
from .errors import (
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
from .functions import assemble_prompt, chunk_file, extract_facts, get_embedder, scan_secrets
from .models import Event, Hit, Message
from .models import Memory as MemoryRecord  # the row; `Memory` is the open database
from .store import MemoryStore

if TYPE_CHECKING:
    from .assistant import Assistant, Settings, TurnResult
    from .budget import AssembledPrompt
    from .doc_chunking import Chunk
    from .documents import AddReport, Document
    from .embed import Embedder
    from .evaluation import EvalReport
    from .evaluation import run_eval as evaluate
    from .extraction import Candidate
    from .fact_keys import FactKeyReport
    from .forgetting import ForgetReport
    from .retention import PruneReport
    from .secrets_gate import GateResult
    from .transfer import ImportReport

# name -> (module, attribute): imported on first use (see the module docstring)
_LAZY: dict[str, tuple[str, str]] = {
    "Assistant": ("assistant", "Assistant"),
    "Settings": ("assistant", "Settings"),
    "TurnResult": ("assistant", "TurnResult"),
    "AssembledPrompt": ("budget", "AssembledPrompt"),
    "Chunk": ("doc_chunking", "Chunk"),
    "AddReport": ("documents", "AddReport"),
    "Document": ("documents", "Document"),
    "Embedder": ("embed", "Embedder"),
    "EvalReport": ("evaluation", "EvalReport"),
    "evaluate": ("evaluation", "run_eval"),
    "Candidate": ("extraction", "Candidate"),
    "FactKeyReport": ("fact_keys", "FactKeyReport"),
    "ForgetReport": ("forgetting", "ForgetReport"),
    "PruneReport": ("retention", "PruneReport"),
    "GateResult": ("secrets_gate", "GateResult"),
    "ImportReport": ("transfer", "ImportReport"),
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
