"""What the model seam (:mod:`memory.llm`) and its two remote paths
(:mod:`memory.llm_openai`, :mod:`memory.llm_litellm`) share: token usage, and
the :class:`Chat` protocol a path is given instead of the ChatModel class, so
that the paths never import the seam that loads them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .errors import ModelError
    from .llm_errors import Failure


@dataclass
class Usage:
    """Token counts of one call (zeros when the provider reported none)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


def usage_of(obj: Any) -> Usage | None:
    raw = getattr(obj, "usage", None)
    if raw is None:
        return None

    def get(name: str) -> int:
        value = raw.get(name) if isinstance(raw, dict) else getattr(raw, name, None)
        return int(value) if isinstance(value, int | float) else 0

    prompt, completion = get("prompt_tokens"), get("completion_tokens")
    total = get("total_tokens") or prompt + completion
    if not (prompt or completion or total):
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


class Chat(Protocol):
    """What a remote path reads and sets on :class:`memory.llm.ChatModel`."""

    name: str
    api_base: str | None
    api_key: str | None
    timeout: float
    num_retries: int
    temperature: float | None
    retry_delay: float
    usage: Usage

    def failed(self, failure: Failure, exc: BaseException, *, attempts: int) -> ModelError: ...
