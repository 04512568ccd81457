"""Every provider that is not OpenAI-compatible, through litellm (imported only here).

``import litellm`` costs about three seconds and 200 MB, so it happens on the first call
of a model routed here (see :func:`memory.models.model_info.route`), never at import.

Retries (HTTP 429, 5xx, timeouts, refused connections) are done here, with exponential
backoff that honours ``Retry-After``, rather than through litellm's ``num_retries``:
that path needs the optional ``tenacity`` package (without it litellm raises a bare
``Exception``), retries even 401/404 answers, and only the OpenAI-SDK providers honour
``max_retries``. litellm itself is always called with ``num_retries=0``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from memory.errors import MemError, ModelRequestError
from memory.models.model_info import litellm as litellm  # the one import of litellm (re-exported)

if TYPE_CHECKING:
    from memory.models.llm_base import Chat, Usage
    from memory.models.llm_errors import Failure

T = TypeVar("T")

MAX_RETRY_DELAY = 20.0  # cap, also for a server's Retry-After


def preload() -> None:
    """Import litellm (for a background thread: the REPL's first reply need not wait)."""
    litellm()


def provider_message(exc: BaseException) -> str:
    """The provider's own words from a litellm exception, without litellm's prefixes."""
    from memory.models.llm_errors import one_line

    text = str(getattr(exc, "message", None) or exc)
    if "Exception - " in text:
        text = text.split("Exception - ", 1)[1]
    else:
        text = re.sub(r"^(litellm\.\w+: )?(\w+: )*", "", text)
    text = re.sub(r"^Error code: \d+ - ", "", text)
    text = re.sub(r"\.? ?Handle with `litellm\.\w+`\.?\s*$", "", text.strip())
    return one_line(_json_message(text)).rstrip(".") or type(exc).__name__


def _json_message(text: str) -> str:
    """The ``message`` of a provider's JSON error body quoted in ``text`` (Anthropic's
    ``{"type": "error", "error": {"message": …}}``), else ``text``."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return text
    try:
        body = json.loads(text[start : end + 1])
    except ValueError:
        return text
    error = body.get("error", body) if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message.strip() else text


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _is_connection_error(exc: BaseException) -> bool:
    ll = litellm()
    if isinstance(exc, ll.APIConnectionError) and not isinstance(exc, ll.Timeout):
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionError):
            return True
        if type(current).__name__ in ("ConnectError", "APIConnectionError"):
            return True
        if str(current).rstrip(".").endswith("Connection error"):
            return True
        current = current.__cause__ or current.__context__
    return False


def classify(exc: BaseException, model: str, api_key: str | None) -> Failure:
    """What went wrong, in the terms :func:`memory.models.llm.describe_failure` words."""
    from memory.models.llm_errors import Failure, is_missing_key_text, key_var_for, one_line

    ll = litellm()
    status = _status(exc)
    if is_missing_key_text(str(exc)):
        return Failure("missing_key")
    if isinstance(exc, ll.AuthenticationError) or status == 401:
        var = key_var_for(model) if not api_key else None
        if var is not None and not os.environ.get(var, "").strip():
            return Failure("missing_key")
        return Failure("auth", status)
    if isinstance(exc, ll.BadRequestError) and "llm provider not provided" in str(exc).lower():
        return Failure("unknown_provider")
    if isinstance(exc, ll.NotFoundError) or status == 404:
        return Failure("not_found", status, provider_message(exc))
    if isinstance(exc, ll.ContextWindowExceededError):
        return Failure("context", status)
    if isinstance(exc, ll.RateLimitError) or status == 429:
        return Failure("rate_limit", status, retryable=True)
    if isinstance(exc, ll.Timeout) or status == 408:
        return Failure("timeout", status, retryable=True)
    if _is_connection_error(exc):
        return Failure("connection", status, retryable=True)
    if isinstance(exc, ll.PermissionDeniedError) or status == 403:
        return Failure("forbidden", status, provider_message(exc))
    if status is not None and status >= 500:
        return Failure("server", status, provider_message(exc), retryable=True)
    if status is not None:
        return Failure("client", status, provider_message(exc), retryable=status == 409)
    return Failure("other", detail=f"{type(exc).__name__}: {one_line(provider_message(exc))}")


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return float(millis) / 1000
        value = headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError, AttributeError):
        return None


def _named_error(exc: BaseException) -> MemError | None:
    """One of our named errors that litellm wrapped (raised in-process before a reply)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemError):
            return current
        current = current.__cause__ or current.__context__
    return None


def with_retries(call: Callable[[], T], chat: Chat) -> T:
    """``call()`` with our retries; a failure comes out as one named error."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as exc:
            named = _named_error(exc)
            if named is not None:  # already says the fix
                raise named from None
            failure = classify(exc, chat.name, chat.api_key)
            if attempt > chat.num_retries or not failure.retryable:
                raise chat.failed(failure, exc, attempts=attempt) from exc
            wait = chat.retry_delay * (2 ** (attempt - 1))
            hinted = _retry_after(exc)
            if hinted is not None and hinted > wait:
                wait = hinted
            time.sleep(min(wait, MAX_RETRY_DELAY))


class LiteLLMPath:
    """litellm's ``completion`` for one :class:`memory.models.llm.ChatModel`."""

    def __init__(self, chat: Chat) -> None:
        self.chat = chat

    def _kwargs(self, messages: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
        chat = self.chat
        kwargs: dict[str, Any] = {
            "model": chat.name,
            "messages": messages,
            "timeout": chat.timeout,
            "num_retries": 0,  # retries are ours, see the module docstring
            "drop_params": True,  # drop settings a provider does not take
        }
        if chat.api_base:
            kwargs["api_base"] = chat.api_base
        if chat.api_key:
            kwargs["api_key"] = chat.api_key
        if chat.temperature is not None:
            kwargs["temperature"] = chat.temperature
        kwargs.update(extra)
        return kwargs

    def _call(self, kwargs: dict[str, Any]) -> Any:
        ll = litellm()
        return with_retries(lambda: ll.completion(**kwargs), self.chat)

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        from memory.models.llm_base import stream_text

        response = self._call(
            self._kwargs(messages, stream=True, stream_options={"include_usage": True})
        )
        yield from stream_text(response, self.chat, require_finish=False)

    def complete(
        self, messages: list[dict[str, str]], *, json_mode: bool
    ) -> tuple[str, Usage | None]:
        from memory.models.llm_base import usage_of

        extra: dict[str, Any] = {}
        if json_mode and self._supports_json_mode():
            extra["response_format"] = {"type": "json_object"}
        try:
            response = self._call(self._kwargs(messages, **extra))
        except ModelRequestError as err:
            # Some endpoints reject JSON mode although litellm lists it: ask once more
            # without it (the schema is in the prompt anyway).
            if "response_format" not in extra or not isinstance(
                err.__cause__, litellm().BadRequestError
            ):
                raise
            response = self._call(self._kwargs(messages))
        try:
            content = response.choices[0].message.content
        except (AttributeError, IndexError, TypeError) as exc:
            raise ModelRequestError(
                f"{self.chat.name} sent a reply without any text: retry, or pick another model."
            ) from exc
        return (content if isinstance(content, str) else ""), usage_of(response)

    def _supports_json_mode(self) -> bool:
        ll = litellm()
        try:
            model, provider, _, _ = ll.get_llm_provider(self.chat.name)
            params = ll.get_supported_openai_params(model=model, custom_llm_provider=provider)
        except Exception:
            return False
        return bool(params) and "response_format" in params


def embed(chat: Chat, texts: list[str]) -> list[list[float]]:
    """Embedding vectors through ``litellm.embedding`` (``chat`` carries the settings)."""
    ll = litellm()
    kwargs: dict[str, Any] = {
        "model": chat.name,
        "input": texts,
        "timeout": chat.timeout,
        "num_retries": 0,
    }
    if chat.api_base:
        kwargs["api_base"] = chat.api_base
    if chat.api_key:
        kwargs["api_key"] = chat.api_key
    response = with_retries(lambda: ll.embedding(**kwargs), chat)
    try:
        rows = sorted(
            response.data,
            key=lambda r: r["index"] if isinstance(r, dict) else getattr(r, "index", 0),
        )
        return [
            [float(v) for v in (r["embedding"] if isinstance(r, dict) else r.embedding)]
            for r in rows
        ]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ModelRequestError(
            f"{chat.name} sent an embedding reply that cannot be read: check the embedding model."
        ) from exc
