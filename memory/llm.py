"""Talking to models: the only module of the project that imports litellm.

``import litellm`` costs seconds, so it happens lazily inside the functions here, never
at module import. Every failure comes out as one of the named errors of
:mod:`memory.errors` with a one-line message that says the fix; the litellm exception
stays attached as ``__cause__``.

Retries (HTTP 429, 5xx, timeouts, refused connections) are done here, with exponential
backoff that honours ``Retry-After``, rather than through litellm's ``num_retries``:
that path needs the optional ``tenacity`` package (without it litellm raises a bare
``Exception``), retries even 401/404 answers, and only the OpenAI-SDK providers honour
``max_retries``. litellm itself is always called with ``num_retries=0``.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from memory.errors import (
    MemError,
    MissingKeyError,
    ModelError,
    ModelRequestError,
    StreamBrokenError,
    UnknownModelError,
)

T = TypeVar("T")

PROVIDERS_URL = "https://docs.litellm.ai/docs/providers"

# provider (as litellm names it) -> the environment variable holding its key
PROVIDER_KEY_VARS: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "text-completion-openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "groq": "GROQ_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "cohere": "COHERE_API_KEY",
    "cohere_chat": "COHERE_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "xai": "XAI_API_KEY",
    "fireworks_ai": "FIREWORKS_AI_API_KEY",
    "perplexity": "PERPLEXITYAI_API_KEY",
    "azure": "AZURE_API_KEY",
    "huggingface": "HUGGINGFACE_API_KEY",
    "voyage": "VOYAGE_API_KEY",
    "cerebras": "CEREBRAS_API_KEY",
}

# Providers whose calls cannot work without one of these variables (or an api_key
# argument): a missing key is reported before any request is sent.
REQUIRED_KEY_VARS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "groq": ("GROQ_API_KEY",),
    "mistral": ("MISTRAL_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY", "OR_API_KEY"),
    "xai": ("XAI_API_KEY",),
}

# Keys checked by has_provider_key(): the common providers' variables.
COMMON_KEY_VARS: tuple[str, ...] = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GROQ_API_KEY",
    "MISTRAL_API_KEY",
    "COHERE_API_KEY",
    "DEEPSEEK_API_KEY",
    "OPENROUTER_API_KEY",
    "TOGETHERAI_API_KEY",
    "XAI_API_KEY",
    "FIREWORKS_AI_API_KEY",
    "PERPLEXITYAI_API_KEY",
    "AZURE_API_KEY",
    "HUGGINGFACE_API_KEY",
    "CEREBRAS_API_KEY",
)

# Substrings of provider/SDK messages that mean "no key was given at all".
_MISSING_KEY_MARKERS = (
    "missing credentials",
    "api_key client option must be set",
    "no key is set",
    "missing anthropic api key",
    "api key not found",
    "api key is missing",
)

DEFAULT_RETRY_DELAY = 0.5  # seconds before the first retry; doubles each time
MAX_RETRY_DELAY = 20.0  # cap, also for a server's Retry-After


@dataclass
class Usage:
    """Token counts of one call (zeros when the provider reported none)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


def _litellm() -> Any:
    """Import litellm on first use, quietly and without network access."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    module: Any = importlib.import_module("litellm")
    module.suppress_debug_info = True  # no "Give Feedback / Get Help" prints
    # The embedded offline model (local/…) as a litellm custom provider; registering
    # loads nothing, the model is loaded on its first reply.
    from .local_model import register

    register(module)
    return module


def has_provider_key() -> bool:
    """True when any common provider's API key is set in the environment."""
    return any(os.environ.get(var, "").strip() for var in COMMON_KEY_VARS)


# -- error mapping ---------------------------------------------------------------------


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _provider_message(exc: BaseException) -> str:
    """The provider's own words from a litellm exception, without litellm's prefixes."""
    text = str(getattr(exc, "message", None) or exc)
    if "Exception - " in text:
        text = text.split("Exception - ", 1)[1]
    else:
        text = re.sub(r"^(litellm\.\w+: )?(\w+: )*", "", text)
    text = re.sub(r"^Error code: \d+ - ", "", text)
    return _one_line(text).rstrip(".") or type(exc).__name__


def _provider_of(model: str) -> str | None:
    try:
        provider = _litellm().get_llm_provider(model)[1]
    except Exception:
        return model.split("/", 1)[0] if "/" in model else None
    return str(provider) if provider else None


def key_var_for(model: str) -> str | None:
    """The environment variable that holds the API key for ``model``, when known."""
    provider = _provider_of(model)
    if provider is None:
        return None
    if provider in PROVIDER_KEY_VARS:
        return PROVIDER_KEY_VARS[provider]
    try:
        missing = _litellm().validate_environment(model).get("missing_keys") or []
    except Exception:
        missing = []
    for var in missing:
        if str(var).endswith("_KEY"):
            return str(var)
    return None


def _missing_key_error(model: str, var: str | None) -> MissingKeyError:
    fix = f"set {var}" if var else "set the provider's API key variable"
    return MissingKeyError(f"No API key for {model}: {fix}, or pick another model with --model.")


def check_key(model: str, *, api_key: str | None = None, api_base: str | None = None) -> None:
    """Raise MissingKeyError when ``model``'s provider surely needs a key that is unset.

    Nothing is checked when a key or a custom ``api_base`` is given, nor for providers
    (local ones such as ollama, or with other ways to sign in) not in REQUIRED_KEY_VARS.
    """
    if api_key or api_base:
        return
    provider = _provider_of(model)
    names = REQUIRED_KEY_VARS.get(provider or "")
    if names and not any(os.environ.get(name, "").strip() for name in names):
        raise _missing_key_error(model, names[0])


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _is_missing_key(exc: BaseException, model: str, api_key: str | None) -> bool:
    text = str(exc).lower()
    if any(marker in text for marker in _MISSING_KEY_MARKERS):
        return True
    ll = _litellm()
    if isinstance(exc, ll.AuthenticationError) and not api_key:
        var = key_var_for(model)
        return var is not None and not os.environ.get(var, "").strip()
    return False


def _is_connection_error(exc: BaseException) -> bool:
    ll = _litellm()
    if isinstance(exc, ll.APIConnectionError) and not isinstance(exc, ll.Timeout):
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionError):
            return True
        name = type(current).__name__
        if name in ("ConnectError", "APIConnectionError"):
            return True
        if str(current).rstrip(".").endswith("Connection error"):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_retryable(exc: BaseException, model: str, api_key: str | None) -> bool:
    ll = _litellm()
    if _is_missing_key(exc, model, api_key):
        return False
    if isinstance(exc, ll.ContextWindowExceededError):
        return False
    if isinstance(exc, ll.RateLimitError | ll.Timeout | ll.APIConnectionError):
        return True
    status = _status(exc)
    return status is not None and (status in (408, 409, 429) or status >= 500)


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError, AttributeError):
        return None


def _map_error(
    exc: BaseException,
    model: str,
    *,
    api_key: str | None = None,
    api_base: str | None = None,
    timeout: float | None = None,
    attempts: int = 1,
) -> ModelError:
    """Turn any exception from litellm into one of our named errors."""
    ll = _litellm()
    var = key_var_for(model)
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    status = _status(exc)
    where = f" at {api_base}" if api_base else ""
    if _is_missing_key(exc, model, api_key):
        return _missing_key_error(model, var)
    if isinstance(exc, ll.AuthenticationError) or status == 401:
        check = f"check {var}" if var and not api_key else "check the configured API key"
        return MissingKeyError(f"The provider rejected the API key for {model}: {check}.")
    if isinstance(exc, ll.BadRequestError) and "llm provider not provided" in str(exc).lower():
        return UnknownModelError(
            f"Unknown model '{model}': use a litellm model name such as openai/gpt-4o-mini"
            f" or ollama/llama3; see {PROVIDERS_URL}"
        )
    if isinstance(exc, ll.NotFoundError) or status == 404:
        return UnknownModelError(
            f"Unknown model '{model}' (the provider answered 404: {_provider_message(exc)}):"
            f" check the model name and the API base URL; see {PROVIDERS_URL}"
        )
    if isinstance(exc, ll.ContextWindowExceededError):
        return ModelRequestError(
            f"The prompt is too long for {model}'s context window: shorten the conversation"
            " or pick a model with a larger context."
        )
    if isinstance(exc, ll.RateLimitError) or status == 429:
        return ModelRequestError(
            f"{model} is rate limiting requests (HTTP 429){tries}: wait a minute and retry,"
            " or check your plan's limits."
        )
    if isinstance(exc, ll.Timeout) or status == 408:
        limit = f" within {timeout:g} s" if timeout else ""
        return ModelRequestError(
            f"{model} did not answer{limit}{tries}: retry later, or check the endpoint."
        )
    if _is_connection_error(exc):
        return ModelRequestError(
            f"Could not connect to the endpoint of {model}{where}{tries}: check that the"
            " server is running and the API base URL is right."
        )
    if isinstance(exc, ll.PermissionDeniedError) or status == 403:
        return ModelRequestError(
            f"The provider refused access to {model} (HTTP 403: {_provider_message(exc)}):"
            " check that your API key may use this model."
        )
    if status is not None and status >= 500:
        return ModelRequestError(
            f"{model} failed with HTTP {status} ({_provider_message(exc)}){tries}:"
            " retry later, or check the endpoint."
        )
    if status is not None:
        return ModelRequestError(
            f"{model} rejected the request (HTTP {status}: {_provider_message(exc)}):"
            " check the model's settings."
        )
    return ModelRequestError(
        f"The request to {model} failed ({type(exc).__name__}: {_provider_message(exc)}):"
        " retry, or check the model name and endpoint."
    )


def _named_error(exc: BaseException) -> MemError | None:
    """One of our named errors that litellm wrapped: memory.local_model runs in-process
    and raises them (e.g. "not installed", "could not be loaded") before any reply."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemError):
            return current
        current = current.__cause__ or current.__context__
    return None


def _with_retries(
    call: Callable[[], T],
    model: str,
    *,
    num_retries: int,
    retry_delay: float,
    api_key: str | None,
    api_base: str | None,
    timeout: float | None,
) -> T:
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as exc:
            named = _named_error(exc)
            if named is not None:  # already says the fix (an in-process provider's error)
                raise named from None
            if attempt > num_retries or not _is_retryable(exc, model, api_key):
                raise _map_error(
                    exc,
                    model,
                    api_key=api_key,
                    api_base=api_base,
                    timeout=timeout,
                    attempts=attempt,
                ) from exc
            wait = retry_delay * (2 ** (attempt - 1))
            hinted = _retry_after(exc)
            if hinted is not None and hinted > wait:
                wait = hinted
            time.sleep(min(wait, MAX_RETRY_DELAY))


def _usage_of(obj: Any) -> Usage | None:
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


_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


def _strip_fence(text: str) -> str:
    match = _FENCE.match(text)
    return match.group(1).strip() if match else text.strip()


# -- the chat model --------------------------------------------------------------------


class ChatModel:
    """One chat model reached through litellm (``provider/model`` names)."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        num_retries: int = 2,
        temperature: float | None = None,
        retry_delay: float = DEFAULT_RETRY_DELAY,
    ) -> None:
        self.name = model
        self.api_base = api_base
        self.api_key = api_key
        self.timeout = timeout
        self.num_retries = max(0, num_retries)
        self.temperature = temperature
        self.retry_delay = retry_delay
        self.usage = Usage()

    def __repr__(self) -> str:
        return f"ChatModel({self.name!r})"

    def _kwargs(self, messages: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.name,
            "messages": messages,
            "timeout": self.timeout,
            "num_retries": 0,  # retries are ours, see the module docstring
            "drop_params": True,  # drop settings a provider does not take
        }
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        kwargs.update(extra)
        return kwargs

    def _call(self, kwargs: dict[str, Any]) -> Any:
        ll = _litellm()
        check_key(self.name, api_key=self.api_key, api_base=self.api_base)
        return _with_retries(
            lambda: ll.completion(**kwargs),
            self.name,
            num_retries=self.num_retries,
            retry_delay=self.retry_delay,
            api_key=self.api_key,
            api_base=self.api_base,
            timeout=self.timeout,
        )

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """Yield the reply's text chunks as they arrive.

        Raises StreamBrokenError when the stream stops before the model finished; the
        text yielded until then stays yielded.
        """
        self.usage = Usage()
        response = self._call(
            self._kwargs(messages, stream=True, stream_options={"include_usage": True})
        )
        received = 0
        try:
            iterator = iter(response)
            while True:
                try:
                    chunk = next(iterator)
                except StopIteration:
                    break
                except Exception as exc:
                    raise StreamBrokenError(
                        f"The reply stream from {self.name} broke off after {received}"
                        " characters: try again."
                    ) from exc
                usage = _usage_of(chunk)
                if usage is not None:
                    self.usage = usage
                choices = getattr(chunk, "choices", None) or []
                if not choices:
                    continue
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

    def complete(
        self, messages: list[dict[str, str]], *, json_schema: dict[str, Any] | None = None
    ) -> str:
        """The whole reply as one string.

        With ``json_schema`` the model is asked for a JSON object matching it (in the
        prompt, plus JSON mode where the provider supports it) and markdown code fences
        around the reply are removed; the caller still parses and validates.
        """
        self.usage = Usage()
        extra: dict[str, Any] = {}
        if json_schema is not None:
            instruction = (
                "Reply with a single JSON object and nothing else. It must match this"
                " JSON schema:\n" + json.dumps(json_schema, indent=None, sort_keys=True)
            )
            messages = [*messages, {"role": "system", "content": instruction}]
            if self._supports_json_mode():
                extra["response_format"] = {"type": "json_object"}
        try:
            response = self._call(self._kwargs(messages, **extra))
        except ModelRequestError as err:
            # Some endpoints reject JSON mode although litellm lists it: ask once more
            # without it (the schema is in the prompt anyway).
            if "response_format" not in extra or not isinstance(
                err.__cause__, _litellm().BadRequestError
            ):
                raise
            response = self._call(self._kwargs(messages))
        usage = _usage_of(response)
        if usage is not None:
            self.usage = usage
        try:
            content = response.choices[0].message.content
        except (AttributeError, IndexError, TypeError) as exc:
            raise ModelRequestError(
                f"{self.name} sent a reply without any text: retry, or pick another model."
            ) from exc
        text = content if isinstance(content, str) else ""
        return _strip_fence(text) if json_schema is not None else text

    def _supports_json_mode(self) -> bool:
        ll = _litellm()
        try:
            model, provider, _, _ = ll.get_llm_provider(self.name)
            params = ll.get_supported_openai_params(model=model, custom_llm_provider=provider)
        except Exception:
            return False
        return bool(params) and "response_format" in params

    def context_window(self) -> int | None:
        """The model's input context size in tokens, or None when litellm does not know."""
        try:
            info = _litellm().get_model_info(self.name)
        except Exception:
            return None
        for key in ("max_input_tokens", "max_tokens"):
            value = info.get(key) if hasattr(info, "get") else None
            if isinstance(value, int) and value > 0:
                return value
        return None


def embed(
    model: str,
    texts: list[str],
    *,
    api_base: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    num_retries: int = 2,
    retry_delay: float = DEFAULT_RETRY_DELAY,
) -> list[list[float]]:
    """Embedding vectors for ``texts``, in order, through ``litellm.embedding``."""
    if not texts:
        return []
    ll = _litellm()
    check_key(model, api_key=api_key, api_base=api_base)
    kwargs: dict[str, Any] = {
        "model": model,
        "input": texts,
        "timeout": timeout,
        "num_retries": 0,
    }
    if api_base:
        kwargs["api_base"] = api_base
    if api_key:
        kwargs["api_key"] = api_key
    response = _with_retries(
        lambda: ll.embedding(**kwargs),
        model,
        num_retries=max(0, num_retries),
        retry_delay=retry_delay,
        api_key=api_key,
        api_base=api_base,
        timeout=timeout,
    )
    try:
        rows = sorted(
            response.data,
            key=lambda r: r["index"] if isinstance(r, dict) else getattr(r, "index", 0),
        )
        vectors = [
            [float(v) for v in (r["embedding"] if isinstance(r, dict) else r.embedding)]
            for r in rows
        ]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ModelRequestError(
            f"{model} sent an embedding reply that cannot be read: check the embedding model."
        ) from exc
    if len(vectors) != len(texts):
        raise ModelRequestError(
            f"{model} returned {len(vectors)} embeddings for {len(texts)} texts:"
            " check the embedding model."
        )
    return vectors
