"""The stateless half of the public API: each function works on text or a file
alone, with no database, so a program can extract facts, check for secrets,
fit a prompt or chunk a document without opening a memory."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from memory.errors import NotFoundError

if TYPE_CHECKING:
    from memory.assistant.budget import AssembledPrompt
    from memory.formation.extraction import Candidate
    from memory.knowledge.chunking import Chunk
    from memory.models.embed import Embedder
    from memory.privacy.secrets_gate import GateResult
    from memory.records import Hit, Memory, Message


def extract_facts(text: str, *, secrets: str = "redact") -> list[Candidate]:
    """The facts and instructions the offline rules find in one user message
    (deterministic; no model), each with the secret gate applied: ``redact``
    masks a secret, ``refuse`` raises SecretRefusedError, ``allow`` keeps it."""
    from memory.formation.extraction import extract_rules

    return [c.gated(secrets)[0] for c in extract_rules([{"role": "user", "content": text}])]


def scan_secrets(text: str) -> GateResult:
    """``text`` with every secret (key, token, card or account number…)
    redacted, and the labels of what was found (``findings``)."""
    from memory.privacy.secrets_gate import scan

    return scan(text)


def assemble_prompt(
    current: str,
    *,
    budget: int = 8192,
    reserve: int = 1024,
    instructions: Sequence[Memory] = (),
    profile: Sequence[Memory] = (),
    retrieved: Sequence[Hit] = (),
    summary: str | None = None,
    recent: Sequence[Message] = (),
    model: str | None = None,
) -> AssembledPrompt:
    """Fit a turn's parts into ``budget - reserve`` tokens (counted for
    ``model``'s tokenizer), dropping the least useful first; see
    :mod:`memory.assistant.budget`. The result holds the chat messages and what was dropped."""
    from memory.assistant.budget import assemble
    from memory.models.tokens import counter

    return assemble(
        current=current,
        count=counter(model),
        budget=budget,
        reserve=reserve,
        instructions=instructions,
        profile=profile,
        retrieved=retrieved,
        summary=summary,
        recent=recent,
    )


def chunk_file(
    path: str | os.PathLike[str],
    *,
    max_tokens: int | None = None,
    overlap: int | None = None,
) -> list[Chunk]:
    """The chunks ``mem add`` would index for one file (split at headings,
    paragraphs and definitions), without storing them."""
    from memory.knowledge.chunking import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP
    from memory.knowledge.chunking import chunk_file as chunks_of
    from memory.knowledge.files import file_format
    from memory.models.tokens import counter

    target = Path(path)
    if not target.is_file():
        raise NotFoundError(f"No such file: {target}; check the path.")
    return list(
        chunks_of(
            target,
            file_format(target, explicit=True) or "text",
            counter(),
            max_tokens=DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
            overlap=DEFAULT_OVERLAP if overlap is None else overlap,
        )
    )


def get_embedder(name: str | None = None) -> Embedder:
    """An embedder by name (the default offline one when None): ``embed(texts)``
    gives one vector per text."""
    from memory.models.embed import get_embedder as named

    return named(name)
