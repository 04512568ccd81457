"""Which model errors mem names, and in which words: one wording for every path.

Both remote paths (:mod:`memory.models.llm_openai`, :mod:`memory.models.llm_litellm`) classify a
failure into a :class:`Failure`; :func:`describe_failure` turns it into one of the named
errors of :mod:`memory.errors` with a one-line message that says the fix, so a 429 reads
the same whether the openai SDK or litellm met it. Key checks need no request and no
litellm: the provider comes from :mod:`memory.models.model_info`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from memory.errors import MissingKeyError, ModelError, ModelRequestError, UnknownModelError
from memory.models import model_info
from memory.models.provider_keys import COMMON_KEY_VARS as COMMON_KEY_VARS  # re-exported
from memory.models.provider_keys import has_provider_key as has_provider_key

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

# Substrings of provider/SDK messages that mean "no key was given at all".
_MISSING_KEY_MARKERS = (
    "missing credentials",
    "api_key client option must be set",
    "no key is set",
    "missing anthropic api key",
    "api key not found",
    "api key is missing",
)


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
        from memory.models.model_info import litellm

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
    from memory import plugins

    kind = "chat model"
    extra = [n for n in plugins.known_names(kind) if not plugins.is_builtin(kind, n)]
    more = f", or a plugin's: {', '.join(extra)}" if extra else ""
    return UnknownModelError(
        f"Unknown model '{model}': use a litellm model name such as openai/gpt-4o-mini"
        f" or ollama/llama3{more}; see {PROVIDERS_URL}"
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
