"""The stateless half of the public API: each function works on text or a file
alone, with no database, so a program can extract facts, check for secrets,
fit a prompt or chunk a document without opening a memory."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from memory.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from memory.assistant.budget import AssembledPrompt
    from memory.config import Config
    from memory.eval.evaluation import EvalReport, StageProgress
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


def evaluate(
    directory: str | os.PathLike[str],
    *,
    ks: Sequence[int] | None = None,
    model: str | None = None,
    limit: int | None = None,
    extract: bool = False,
    embedder: str | None = None,
    profile: str | None = None,
    progress: StageProgress | None = None,
    config: Config | None = None,
    server: str | None = None,
    episodes: bool = True,
) -> EvalReport:
    """Recall@k (k: 1, 5, 10, 20 and ``ks``), MRR, latency and recall within a
    token budget of DIR's questions, on a temporary database that
    ``DIR/messages.jsonl`` is imported into (deleted after): a file, or with
    ``server`` (a postgresql:// URL) a database made on that server. ``extract``: a
    model (``model``, else the configured one) indexes fact keys first; no
    model is an error before anything is read. ``episodes``: each imported session
    becomes an episode (offline) before searching. :meth:`Memory.eval` measures an
    open database instead."""
    from memory.config import (
        is_server_url,
        load_config,
        resolve_embedder,
        resolve_model,
        resolve_profile,
    )
    from memory.eval.evaluation import KS, run_eval
    from memory.formation.fact_keys import model_completer, require_model

    cfg = config if config is not None else load_config()
    if server is not None and not is_server_url(server):
        raise UsageError("Not a server URL: give postgresql://user@host/dbname.")
    model_name = resolve_model(model, cfg)
    complete = None
    if extract:
        complete = model_completer(require_model(model_name), api_base=cfg.api_base)
    return run_eval(
        Path(directory),
        embedder=resolve_embedder(embedder, cfg),
        profile=resolve_profile(profile, cfg),
        ks=tuple(sorted({*KS, *(ks or ())})),
        model=model_name,
        limit=limit,
        extract=complete,
        progress=progress,
        server=server,
        episodes=episodes,
    )


def resolve_chat_model(option: str | None, config: Config) -> tuple[str | None, str | None]:
    """The model a chat uses: ``option``, else MEM_MODEL, else the config's, else
    the embedded offline one when it is installed and no provider key says the
    user meant a provider. Returns ``(name or None, note)``: the note says the
    offline one was picked and how to choose a stronger one."""
    from memory.config import resolve_model
    from memory.models.local_model import DEFAULT_NOTE, default_model

    name = resolve_model(option, config)
    if name is not None:
        return name, None
    name = default_model()
    return name, DEFAULT_NOTE if name is not None else None
