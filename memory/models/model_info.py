"""Facts about a model without importing litellm: provider, context window, prices.

``import litellm`` costs seconds and about 200 MB; what mem needs from it before a call
is a few numbers that litellm ships as data, ``model_prices_and_context_window_backup.json``
inside its package. The file is found with ``find_spec`` (nothing imported) and only the
one entry asked for is decoded: the file is 3.5 MB and parsing all of it costs ~50 ms on
every ``mem ask``, finding the entry's key and decoding from there about a tenth of that.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA_FILE = "model_prices_and_context_window_backup.json"

# litellm's provider prefixes whose endpoints speak the OpenAI chat API (with an
# api_base for all but openai itself): these go through the openai SDK directly.
OPENAI_PROVIDERS = ("openai", "custom_openai", "hosted_vllm", "lm_studio", "llamafile")
# Every provider prefix mem knows for certain (others are left to litellm).
KNOWN_PREFIXES = (
    *OPENAI_PROVIDERS,
    "local",
    "anthropic",
    "gemini",
    "vertex_ai",
    "groq",
    "mistral",
    "cohere",
    "cohere_chat",
    "deepseek",
    "openrouter",
    "together_ai",
    "xai",
    "fireworks_ai",
    "perplexity",
    "azure",
    "huggingface",
    "voyage",
    "cerebras",
    "ollama",
    "ollama_chat",
    "bedrock",
    "text-completion-openai",
)


@dataclass(frozen=True)
class ModelFacts:
    """What the data file says about one model (None: not said)."""

    provider: str | None
    context_window: int | None
    input_cost_per_token: float | None
    output_cost_per_token: float | None
    mode: str | None


@lru_cache(maxsize=1)
def data_path() -> Path | None:
    """litellm's bundled data file, when litellm is installed (it is not imported)."""
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / DATA_FILE
    return path if path.is_file() else None


@lru_cache(maxsize=1)
def _text() -> str:
    path = data_path()
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


@lru_cache(maxsize=64)
def entry(name: str) -> dict[str, Any] | None:
    """The data file's object for the model key ``name`` exactly, or None."""
    text = _text()
    if not text or not name:
        return None
    # Top-level keys sit at an indent of four spaces, one per line.
    match = re.search(r'^    "' + re.escape(json.dumps(name)[1:-1]) + r'": \{', text, re.MULTILINE)
    if match is None:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text, match.end() - 1)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def split(model: str) -> tuple[str | None, str]:
    """(provider prefix, rest) of ``provider/model``; (None, model) without a known one."""
    prefix, sep, rest = model.partition("/")
    if sep and prefix.lower() in KNOWN_PREFIXES:
        return prefix.lower(), rest
    return None, model


def provider_of(model: str) -> str | None:
    """The provider of ``model``: its prefix, or for a bare name (``gpt-4o-mini``) what
    the data file says; None when neither tells."""
    prefix, _ = split(model)
    if prefix is not None:
        return prefix
    if "/" in model:
        return model.split("/", 1)[0].lower()
    found = entry(model)
    provider = found.get("litellm_provider") if found else None
    return str(provider) if isinstance(provider, str) else None


def facts(model: str) -> ModelFacts:
    """The model's entry under its full name, else under its name without the prefix
    when that entry belongs to the same provider (as litellm's own lookup does)."""
    provider = provider_of(model)
    found = entry(model)
    if found is None and "/" in model:
        bare = entry(model.split("/", 1)[1])
        if bare is not None and bare.get("litellm_provider") == provider:
            found = bare
    found = found or {}

    def number(key: str) -> float | None:
        value = found.get(key)
        return float(value) if isinstance(value, int | float) and value >= 0 else None

    window = None
    for key in ("max_input_tokens", "max_tokens"):
        value = found.get(key)
        if isinstance(value, int) and value > 0:
            window = value
            break
    mode = found.get("mode")
    return ModelFacts(
        provider=provider,
        context_window=window,
        input_cost_per_token=number("input_cost_per_token"),
        output_cost_per_token=number("output_cost_per_token"),
        mode=mode if isinstance(mode, str) else None,
    )


def route(model: str, api_base: str | None = None) -> str:
    """Which path a model takes: "local" (llama.cpp in this process), "openai" (the
    openai SDK: OpenAI itself, or an OpenAI-compatible server at an api_base), or
    "litellm" (every other provider)."""
    prefix, _ = split(model)
    if prefix == "local":
        return "local"
    if prefix == "openai":
        return "openai"
    if prefix in OPENAI_PROVIDERS:
        env_base = os.environ.get(f"{prefix.upper()}_API_BASE", "").strip()
        return "openai" if api_base or env_base else "litellm"
    if prefix is None and "/" not in model and provider_of(model) == "openai":
        return "openai"
    return "litellm"


ROUTE_LABELS = {
    "openai": "the openai SDK",
    "litellm": "litellm",
    "local": "llama.cpp in this process",
}


def litellm() -> Any:
    """Import litellm on first use, quietly and without network access."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    module: Any = importlib.import_module("litellm")
    module.suppress_debug_info = True  # no "Give Feedback / Get Help" prints
    return module
