"""Talking to models: the one seam, :class:`ChatModel`, over three paths.

Which path a model takes (:func:`memory.model_info.route`) is a visible fact
(``ChatModel.describe()``, printed by ``mem ask --show-prompt`` and ``-v``):

- ``openai``: OpenAI and any OpenAI-compatible endpoint, through the ``openai`` SDK
  (:mod:`memory.llm_openai`, half a second to import);
- ``litellm``: every other provider (:mod:`memory.llm_litellm`, imported only then:
  three seconds and 200 MB);
- ``local``: the embedded offline model, llama.cpp in this process
  (:mod:`memory.local_model`).

Nothing heavy is imported at module import. Every failure comes out as one of the named
errors of :mod:`memory.errors` with a one-line message that says the fix, worded once
here (:func:`describe_failure`) for both remote paths; the original exception stays
attached as ``__cause__``. Model facts (context window, prices) come from
:mod:`memory.model_info`, which reads litellm's data file without importing litellm.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import model_info
from .errors import (
    MissingKeyError,
    ModelError,
    ModelRequestError,
    UnknownModelError,
)

if TYPE_CHECKING:
    from .budget import PromptSections

ROUTES = ("openai", "litellm", "local")
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


@dataclass
class Usage:
    """Token counts of one call (zeros when the provider reported none)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


def has_provider_key() -> bool:
    """True when any common provider's API key is set in the environment."""
    return any(os.environ.get(var, "").strip() for var in COMMON_KEY_VARS)


def one_line(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def is_missing_key_text(text: str) -> bool:
    """True for a provider's or SDK's words for "no key was given at all"."""
    lowered = text.lower()
    return any(marker in lowered for marker in _MISSING_KEY_MARKERS)


def key_var_for(model: str) -> str | None:
    """The environment variable that holds the API key for ``model``, when known.

    Only a provider mem does not know sends the question to litellm (imported then)."""
    provider = model_info.provider_of(model)
    if provider is None:
        return None
    if provider in PROVIDER_KEY_VARS:
        return PROVIDER_KEY_VARS[provider]
    try:
        from .llm_litellm import litellm

        missing = litellm().validate_environment(model).get("missing_keys") or []
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
    names = REQUIRED_KEY_VARS.get(model_info.provider_of(model) or "")
    if names and not any(os.environ.get(name, "").strip() for name in names):
        raise _missing_key_error(model, names[0])


def unknown_model_error(model: str) -> UnknownModelError:
    return UnknownModelError(
        f"Unknown model '{model}': use a litellm model name such as openai/gpt-4o-mini"
        f" or ollama/llama3; see {PROVIDERS_URL}"
    )


@dataclass
class Failure:
    """What went wrong with a call, whichever path made it.

    ``kind``: missing_key, auth, unknown_provider, not_found, context, rate_limit,
    timeout, connection, forbidden, server, client or other."""

    kind: str
    status: int | None = None
    detail: str = ""
    retryable: bool = False


def describe_failure(
    failure: Failure,
    model: str,
    *,
    api_key: str | None = None,
    api_base: str | None = None,
    timeout: float | None = None,
    attempts: int = 1,
) -> ModelError:
    """The one-line error for ``failure``: the same words on every path."""
    var = key_var_for(model) if failure.kind in ("missing_key", "auth") else None
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    where = f" at {api_base}" if api_base else ""
    status, detail = failure.status, failure.detail
    if failure.kind == "missing_key":
        return _missing_key_error(model, var)
    if failure.kind == "auth":
        check = f"check {var}" if var and not api_key else "check the configured API key"
        return MissingKeyError(f"The provider rejected the API key for {model}: {check}.")
    if failure.kind == "unknown_provider":
        return unknown_model_error(model)
    if failure.kind == "not_found":
        return UnknownModelError(
            f"Unknown model '{model}' (the provider answered 404: {detail}):"
            f" check the model name and the API base URL; see {PROVIDERS_URL}"
        )
    if failure.kind == "context":
        return ModelRequestError(
            f"The prompt is too long for {model}'s context window: shorten the conversation"
            " or pick a model with a larger context."
        )
    if failure.kind == "rate_limit":
        return ModelRequestError(
            f"{model} is rate limiting requests (HTTP 429){tries}: wait a minute and retry,"
            " or check your plan's limits."
        )
    if failure.kind == "timeout":
        limit = f" within {timeout:g} s" if timeout else ""
        return ModelRequestError(
            f"{model} did not answer{limit}{tries}: retry later, or check the endpoint."
        )
    if failure.kind == "connection":
        return ModelRequestError(
            f"Could not connect to the endpoint of {model}{where}{tries}: check that the"
            " server is running and the API base URL is right."
        )
    if failure.kind == "forbidden":
        return ModelRequestError(
            f"The provider refused access to {model} (HTTP 403: {detail}):"
            " check that your API key may use this model."
        )
    if failure.kind == "server":
        return ModelRequestError(
            f"{model} failed with HTTP {status} ({detail}){tries}:"
            " retry later, or check the endpoint."
        )
    if failure.kind == "client" and status is not None:
        return ModelRequestError(
            f"{model} rejected the request (HTTP {status}: {detail}): check the model's settings."
        )
    return ModelRequestError(
        f"The request to {model} failed ({detail}): retry, or check the model name and endpoint."
    )


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


_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


def _strip_fence(text: str) -> str:
    match = _FENCE.match(text)
    return match.group(1).strip() if match else text.strip()


# -- the chat model --------------------------------------------------------------------


class ChatModel:
    """One chat model, reached on the path its name and ``api_base`` choose.

    ``route`` forces a path ("openai", "litellm" or "local"), e.g. to reach an
    OpenAI-compatible server through litellm after all."""

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
        route: str | None = None,
    ) -> None:
        self.name = model
        self.api_base = api_base
        self.api_key = api_key
        self.timeout = timeout
        self.num_retries = max(0, num_retries)
        self.temperature = temperature
        self.retry_delay = retry_delay
        self.usage = Usage()
        if route is not None and route not in ROUTES:
            raise ValueError(f"unknown route {route!r}: use one of {', '.join(ROUTES)}")
        self.route = route or model_info.route(model, api_base)
        self._path: Any = None

    def __repr__(self) -> str:
        return f"ChatModel({self.name!r}, route={self.route!r})"

    def describe(self) -> str:
        """Which path this model takes, in words (for --show-prompt and -v)."""
        text = f"{self.name} via {model_info.ROUTE_LABELS[self.route]}"
        if self.route == "openai":
            from .llm_openai import endpoint

            base = endpoint(self.name, self.api_base, self.api_key)[1]
            text += f" at {base}" if base else ""
        elif self.api_base:
            text += f" at {self.api_base}"
        return text

    def failed(self, failure: Failure, exc: BaseException, *, attempts: int) -> ModelError:
        """The named error for a failed call (``exc`` becomes its cause)."""
        api_base = self.api_base
        if self.route == "openai" and api_base is None:
            from .llm_openai import endpoint

            api_base = endpoint(self.name, None, self.api_key)[1]
        return describe_failure(
            failure,
            self.name,
            api_key=self.api_key,
            api_base=api_base,
            timeout=self.timeout,
            attempts=attempts,
        )

    def _remote(self) -> Any:
        """The openai or litellm path, after the checks that need no request."""
        if self._path is None:
            if "/" not in self.name and model_info.provider_of(self.name) is None:
                raise unknown_model_error(self.name)  # no provider: litellm would say so
            check_key(self.name, api_key=self.api_key, api_base=self.api_base)
            if self.route == "openai":
                from .llm_openai import OpenAIPath

                self._path = OpenAIPath(self)
            else:
                from .llm_litellm import LiteLLMPath

                self._path = LiteLLMPath(self)
        return self._path

    def preload(self) -> None:
        """Import (or load) what the first reply needs; for a background thread."""
        if self.route == "local":
            from .local_model import check_name, get_llama, require_installed

            check_name(self.name)  # no 250 MB load for a mistyped name
            require_installed(self.name)
            get_llama()
        elif self.route == "openai":
            from .llm_openai import preload

            preload()
        else:
            from .llm_litellm import preload as preload_litellm

            preload_litellm()

    def stream(
        self, messages: list[dict[str, str]], *, sections: PromptSections | None = None
    ) -> Iterator[str]:
        """Yield the reply's text chunks as they arrive.

        ``sections`` (from :func:`memory.budget.assemble`) is what the offline model
        builds its prompt from; chat models take ``messages``. Raises StreamBrokenError
        when the stream stops before the model finished; the text yielded until then
        stays yielded.
        """
        self.usage = Usage()
        if self.route == "local":
            yield from self._local(messages, sections)
            return
        yield from self._remote().stream(messages)

    def _local(
        self, messages: list[dict[str, str]], sections: PromptSections | None
    ) -> Iterator[str]:
        from . import local_model

        local_model.check_name(self.name)
        local_model.require_installed(self.name)
        local_model.get_llama()  # a load failure is raised before any text
        for piece in local_model.generate(
            sections if sections is not None else messages, temperature=self.temperature
        ):
            if piece.finish_reason is not None:
                total = piece.prompt_tokens + piece.completion_tokens
                self.usage = Usage(piece.prompt_tokens, piece.completion_tokens, total)
            if piece.text:
                yield piece.text

    def prompt_text(self, sections: PromptSections) -> str | None:
        """The text the model receives instead of chat messages (the offline model's
        completion prompt), or None for chat models."""
        if self.route != "local":
            return None
        from .local_model import render_prompt

        return render_prompt(sections)

    def complete(
        self, messages: list[dict[str, str]], *, json_schema: dict[str, Any] | None = None
    ) -> str:
        """The whole reply as one string.

        With ``json_schema`` the model is asked for a JSON object matching it (in the
        prompt, plus JSON mode where the provider supports it) and markdown code fences
        around the reply are removed; the caller still parses and validates.
        """
        self.usage = Usage()
        if self.route == "local":
            return "".join(self._local(messages, None))
        if json_schema is not None:
            instruction = (
                "Reply with a single JSON object and nothing else. It must match this"
                " JSON schema:\n" + json.dumps(json_schema, indent=None, sort_keys=True)
            )
            messages = [*messages, {"role": "system", "content": instruction}]
        text, usage = self._remote().complete(messages, json_mode=json_schema is not None)
        if usage is not None:
            self.usage = usage
        return _strip_fence(text) if json_schema is not None else text

    def context_window(self) -> int | None:
        """The model's input context size in tokens, or None when it is not known."""
        if self.route == "local":
            from .local_model import CONTEXT_WINDOW

            return CONTEXT_WINDOW
        return model_info.facts(self.name).context_window


def preload_in_background(model: str | None, api_base: str | None = None) -> None:
    """Start importing (or loading) what ``model``'s first reply needs, in a daemon
    thread, so it overlaps opening the store, searching and assembling the prompt.
    Failures are left for the real call to report, in its own words."""
    if not model:
        return

    def work() -> None:
        try:
            ChatModel(model, api_base=api_base).preload()
        except Exception:
            pass

    threading.Thread(target=work, name="mem-model-preload", daemon=True).start()


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
    settings = ChatModel(
        model,
        api_base=api_base,
        api_key=api_key,
        timeout=timeout,
        num_retries=num_retries,
        retry_delay=retry_delay,
        route="litellm",
    )
    if "/" not in model and model_info.provider_of(model) is None:
        raise unknown_model_error(model)
    check_key(model, api_key=api_key, api_base=api_base)
    from .llm_litellm import embed as litellm_embed

    vectors = litellm_embed(settings, texts)
    if len(vectors) != len(texts):
        raise ModelRequestError(
            f"{model} returned {len(vectors)} embeddings for {len(texts)} texts:"
            " check the embedding model."
        )
    return vectors
