"""Whether any provider key is set: what the offline model's default needs from
the model seam, kept apart so :mod:`memory.models.local_model` never imports
:mod:`memory.models.llm` (which loads it), directly or through litellm's path."""

from __future__ import annotations

import os

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


def has_provider_key() -> bool:
    """True when any common provider's API key is set in the environment."""
    return any(os.environ.get(var, "").strip() for var in COMMON_KEY_VARS)
