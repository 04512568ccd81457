"""Pytest fixtures for the fake OpenAI-compatible server (``tests/fakeserver.py``).

Register with ``pytest_plugins = ["conftest_llm"]`` (``tests/`` is on ``sys.path``)
or ``from conftest_llm import fake_llm``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

try:
    from fakeserver import FakeLLMServer
except ImportError:  # imported as tests.conftest_llm
    from tests.fakeserver import FakeLLMServer

__all__ = ["FakeLLMServer", "fake_llm", "fake_llm_server"]

# Variables that would point a client somewhere else or carry a real key.
_CLEARED_ENV = (
    "OPENAI_API_BASE",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_ORGANIZATION",
    "OPENAI_PROJECT",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GROQ_API_KEY",
    "MISTRAL_API_KEY",
    "LITELLM_API_BASE",
)


@pytest.fixture
def fake_llm_server() -> Iterator[FakeLLMServer]:
    """A running fake server without touching the environment."""
    server = FakeLLMServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_llm(
    fake_llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeLLMServer]:
    """A running fake server, with OPENAI_* env vars pointing at it (key ``sk-test``).

    Other providers' keys are removed from the environment so that no test can reach a
    real provider. ``server.env()`` gives the same variables for a subprocess.
    """
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    for name in _CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in fake_llm_server.env().items():
        monkeypatch.setenv(name, value)
    yield fake_llm_server
