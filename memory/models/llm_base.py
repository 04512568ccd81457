"""What the model seam (:mod:`memory.models.llm`) and its two remote paths
(:mod:`memory.models.llm_openai`, :mod:`memory.models.llm_litellm`) share: token usage, and
the :class:`Chat` protocol a path is given instead of the ChatModel class, so
that the paths never import the seam that loads them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from memory.errors import StreamBrokenError

if TYPE_CHECKING:
    from memory.errors import ModelError
    from memory.models.llm_errors import Failure


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
    """What a remote path reads and sets on :class:`memory.models.llm.ChatModel`."""

    name: str
    api_base: str | None
    api_key: str | None
    timeout: float
    num_retries: int
    temperature: float | None
    retry_delay: float
    usage: Usage

    def failed(self, failure: Failure, exc: BaseException, *, attempts: int) -> ModelError: ...


def stream_text(response: Any, chat: Chat, *, require_finish: bool) -> Iterator[str]:
    """The text of an OpenAI-shaped chunk stream, recording the usage it
    reports on ``chat``; a stream that fails mid-way (or, with
    ``require_finish``, ends without a finish reason) is a StreamBrokenError.
    The response is closed whatever happens."""
    received = 0
    finished = False

    def broken() -> StreamBrokenError:
        return StreamBrokenError(
            f"The reply stream from {chat.name} broke off after {received} characters: try again."
        )

    try:
        iterator = iter(response)
        while True:
            try:
                chunk = next(iterator)
            except StopIteration:
                break
            except Exception as exc:
                raise broken() from exc
            usage = usage_of(chunk)
            if usage is not None:
                chat.usage = usage
            choices = getattr(chunk, "choices", None) or []
            if not choices:
                continue
            if getattr(choices[0], "finish_reason", None):
                finished = True
            delta = getattr(choices[0], "delta", None)
            text = getattr(delta, "content", None) if delta is not None else None
            if isinstance(text, str) and text:
                received += len(text)
                yield text
    finally:
        close = getattr(response, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                pass
    if require_finish and not finished:  # the body ended cleanly, the model never said done
        raise broken()
