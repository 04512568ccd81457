"""OpenAI-compatible endpoints through the ``openai`` SDK, without litellm.

OpenAI itself and every server that speaks its chat API (vLLM, llama.cpp's server,
Ollama's ``/v1``, LM Studio, a company gateway) are reached with one SDK that imports in
half a second, where litellm takes three. Streaming, timeouts and retries (429, 5xx,
timeouts, refused connections, honouring ``Retry-After``) are the SDK's own; failures
are classified here and worded by :func:`memory.models.llm.describe_failure`, so both paths
say the same one-line thing.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from memory.models.model_info import split

if TYPE_CHECKING:
    from memory.models.llm_base import Chat, Usage
    from memory.models.llm_errors import Failure

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "too many tokens",
    "prompt is too long",
)


def _openai() -> Any:
    return importlib.import_module("openai")


def preload() -> None:
    """Import the SDK (for a background thread: the REPL's first reply need not wait)."""
    openai = _openai()
    openai.OpenAI  # noqa: B018 - resolves the client's lazy modules too


def endpoint(
    model: str, api_base: str | None, api_key: str | None
) -> tuple[str, str | None, str | None]:
    """(model name to send, base URL or None for the SDK's default, key or None)."""
    prefix, rest = split(model)
    if prefix is None or prefix == "openai":
        # Read here, not by the SDK: the shared client is keyed by them.
        base = api_base or _env("OPENAI_API_BASE") or _env("OPENAI_BASE_URL")
        return (model if prefix is None else rest), base, api_key or _env("OPENAI_API_KEY")
    upper = prefix.upper()
    key = api_key or _env(f"{upper}_API_KEY") or "none"  # local servers take any key
    return rest, api_base or _env(f"{upper}_API_BASE"), key


_clients: dict[tuple[str | None, str | None, float, int], Any] = {}
_clients_lock = threading.Lock()
MAX_CLIENTS = 8


def _shared_client(base: str | None, key: str | None, timeout: float, retries: int) -> Any:
    """One SDK client per endpoint and settings, for the whole process: every ChatModel
    of a REPL session (and the background memory thread's) reuses its open connections,
    and none is left to the garbage collector with a socket still open."""
    ident = (base, key, timeout, retries)
    with _clients_lock:
        client = _clients.get(ident)
        if client is None:
            options: dict[str, Any] = {"timeout": timeout, "max_retries": retries}
            if base:
                options["base_url"] = base
            if key:
                options["api_key"] = key
            client = _openai().OpenAI(**options)
            if len(_clients) >= MAX_CLIENTS:
                _clients.pop(next(iter(_clients))).close()
            _clients[ident] = client
        return client


def _env(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


class OpenAIPath:
    """The openai SDK's client for one :class:`memory.models.llm.ChatModel`."""

    def __init__(self, chat: Chat) -> None:
        self.chat = chat
        self._client: Any = None

    def base_url(self) -> str | None:
        return endpoint(self.chat.name, self.chat.api_base, self.chat.api_key)[1]

    def client(self) -> Any:
        if self._client is None:
            _, base, key = endpoint(self.chat.name, self.chat.api_base, self.chat.api_key)
            try:
                self._client = _shared_client(base, key, self.chat.timeout, self.chat.num_retries)
            except Exception as exc:  # no key at all: the SDK refuses to build a client
                raise self.chat.failed(self.classify(exc), exc, attempts=1) from exc
        return self._client

    def _kwargs(self, messages: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": endpoint(self.chat.name, None, None)[0],
            "messages": messages,
        }
        if self.chat.temperature is not None:
            kwargs["temperature"] = self.chat.temperature
        kwargs.update(extra)
        return kwargs

    def _create(self, kwargs: dict[str, Any]) -> Any:
        client = self.client()
        try:
            return client.chat.completions.create(**kwargs)
        except Exception as exc:
            failure = self.classify(exc)
            attempts = self.chat.num_retries + 1 if failure.retryable else 1
            raise self.chat.failed(failure, exc, attempts=attempts) from exc

    # -- calls ------------------------------------------------------------------------
    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        from memory.models.llm_base import stream_text

        response = self._create(
            self._kwargs(messages, stream=True, stream_options={"include_usage": True})
        )
        # The openai SDK passes a body that ends without a finish reason as complete.
        yield from stream_text(response, self.chat, require_finish=True)

    def complete(
        self, messages: list[dict[str, str]], *, json_mode: bool
    ) -> tuple[str, Usage | None]:
        """The reply's text and usage. JSON mode is asked for whenever a schema is
        given; an endpoint that rejects it (HTTP 400) is asked once more without."""
        from memory.errors import ModelRequestError
        from memory.models.llm_base import usage_of

        if json_mode:
            try:
                response = self._create(
                    self._kwargs(messages, response_format={"type": "json_object"})
                )
            except ModelRequestError as err:
                if _status(err.__cause__) != 400:
                    raise
                response = self._create(self._kwargs(messages))
        else:
            response = self._create(self._kwargs(messages))
        try:
            content = response.choices[0].message.content
        except (AttributeError, IndexError, TypeError) as exc:
            raise ModelRequestError(
                f"{self.chat.name} sent a reply without any text: retry, or pick another model."
            ) from exc
        return (content if isinstance(content, str) else ""), usage_of(response)

    # -- errors -----------------------------------------------------------------------
    def classify(self, exc: BaseException) -> Failure:
        """What went wrong, in the terms :func:`memory.models.llm.describe_failure` words."""
        from memory.models.llm_errors import Failure, is_missing_key_text, one_line

        openai = _openai()
        status = _status(exc)
        detail = _detail(exc)
        if is_missing_key_text(str(exc)):
            return Failure("missing_key")
        if isinstance(exc, openai.APITimeoutError):
            return Failure("timeout", retryable=True)
        if isinstance(exc, openai.APIConnectionError):
            return Failure("connection", retryable=True)
        if status is None:
            return Failure("other", detail=f"{type(exc).__name__}: {one_line(str(exc))}")
        if status == 401:
            return Failure("auth", status)
        if status == 404:
            return Failure("not_found", status, detail)
        if status == 400 and any(m in detail.lower() for m in _CONTEXT_MARKERS):
            return Failure("context", status)
        if status == 429:
            return Failure("rate_limit", status, retryable=True)
        if status == 408:
            return Failure("timeout", status, retryable=True)
        if status == 403:
            return Failure("forbidden", status, detail)
        if status >= 500:
            return Failure("server", status, detail, retryable=True)
        return Failure("client", status, detail, retryable=status == 409)


def _status(exc: BaseException | None) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _detail(exc: BaseException) -> str:
    """The server's own message (the SDK's str() adds "Error code: 401 - {…}")."""
    from memory.models.llm_errors import one_line

    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str) and message.strip():
            return one_line(message).rstrip(".")
    text = str(getattr(exc, "message", None) or exc)
    return one_line(text).rstrip(".") or type(exc).__name__
