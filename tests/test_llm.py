"""memory.models.llm against the fake server, on both remote paths (the openai SDK and litellm)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeLLMServer

from memory.errors import (
    MissingKeyError,
    ModelRequestError,
    StreamBrokenError,
    UnknownModelError,
)
from memory.models.embed import LiteLLMEmbedder
from memory.models.llm import ChatModel, Usage, embed, has_provider_key

# The fixtures fake_llm and fake_llm_server (harmless if tests/conftest.py registers it too).
pytest_plugins = ["conftest_llm"]

ROOT = Path(__file__).resolve().parent.parent
MODEL = "openai/gpt-4o-mini"
PROVIDERS = "https://docs.litellm.ai/docs/providers"
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello."},
]


@pytest.fixture(params=["openai", "litellm"])
def route(request: pytest.FixtureRequest) -> str:
    """Each test taking ``route`` runs on both remote paths: the same behaviour, the same
    one-line errors, whether the openai SDK or litellm makes the call."""
    return str(request.param)


def chat(route: str, **kwargs: object) -> ChatModel:
    options: dict[str, object] = {
        "timeout": 5.0,
        "num_retries": 2,
        "retry_delay": 0.01,
        "route": route,
    }
    options.update(kwargs)
    return ChatModel(MODEL, **options)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- happy paths -----------------------------------------------------------------------


def test_stream_yields_chunks_in_order(fake_llm: FakeLLMServer, route: str) -> None:
    fake_llm.enqueue("Hello there, how are you?")
    model = chat(route)
    chunks = list(model.stream(MESSAGES))
    assert chunks == ["Hello ", "there, ", "how ", "are ", "you?"]
    body = fake_llm.last_request()
    assert body["stream"] is True
    assert body["model"] == "gpt-4o-mini"
    assert fake_llm.last_messages() == MESSAGES
    assert model.usage == Usage(prompt_tokens=5, completion_tokens=5, total_tokens=10)


def test_stream_arrives_incrementally(fake_llm: FakeLLMServer, route: str) -> None:
    fake_llm.enqueue("abcdef", chunk_size=1)
    stream = chat(route).stream(MESSAGES)
    assert next(stream) == "a"
    assert next(stream) == "b"
    assert "".join(stream) == "cdef"


def test_complete_non_streaming(fake_llm: FakeLLMServer, route: str) -> None:
    fake_llm.enqueue("A full reply.")
    model = chat(route, temperature=0.2)
    assert model.complete(MESSAGES) == "A full reply."
    body = fake_llm.last_request()
    assert "stream" not in body
    assert body["temperature"] == 0.2
    assert body["messages"] == MESSAGES
    assert model.usage == Usage(prompt_tokens=5, completion_tokens=3, total_tokens=8)


def test_default_reply_when_queue_empty(fake_llm: FakeLLMServer, route: str) -> None:
    assert chat(route).complete(MESSAGES) == "OK"
    assert "".join(chat(route).stream(MESSAGES)) == "OK"
    assert len(fake_llm.chat_requests()) == 2


def test_api_base_argument_without_env(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    monkeypatch.delenv("OPENAI_API_BASE")
    monkeypatch.delenv("OPENAI_BASE_URL")
    fake_llm.enqueue("via api_base")
    model = chat(route, api_base=fake_llm.url, api_key="sk-explicit")
    assert model.complete(MESSAGES) == "via api_base"
    assert fake_llm.headers[-1]["authorization"] == "Bearer sk-explicit"


def test_complete_with_json_schema(fake_llm: FakeLLMServer, route: str) -> None:
    fake_llm.enqueue('```json\n{"facts": ["likes tea"]}\n```')
    schema = {"type": "object", "properties": {"facts": {"type": "array"}}}
    reply = chat(route).complete(MESSAGES, json_schema=schema)
    assert json.loads(reply) == {"facts": ["likes tea"]}
    body = fake_llm.last_request()
    assert body["response_format"] == {"type": "json_object"}
    sent = fake_llm.last_messages()
    assert sent[:2] == MESSAGES
    assert sent[2]["role"] == "system"
    assert json.dumps(schema, sort_keys=True) in sent[2]["content"]


def test_json_mode_rejected_falls_back_to_prompt_only(fake_llm: FakeLLMServer, route: str) -> None:
    fake_llm.enqueue_error(400, "response_format is not supported by this server")
    fake_llm.enqueue('{"ok": true}')
    assert chat(route).complete(MESSAGES, json_schema={"type": "object"}) == '{"ok": true}'
    first, second = fake_llm.chat_requests()
    assert "response_format" in first
    assert "response_format" not in second


def test_context_window() -> None:
    assert ChatModel(MODEL).context_window() == 128000
    assert ChatModel("nonexistent-model-xyz").context_window() is None
    assert ChatModel("openai/no-such-model-here").context_window() is None


def test_has_provider_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    assert has_provider_key() is False
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant")
    assert has_provider_key() is True


def test_embed_returns_server_dimension(fake_llm: FakeLLMServer) -> None:
    vectors = embed("openai/text-embedding-3-small", ["alpha", "beta", "alpha"])
    assert len(vectors) == 3
    assert all(len(v) == 8 for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    assert fake_llm.embedding_requests()[-1]["input"] == ["alpha", "beta", "alpha"]
    assert embed("openai/text-embedding-3-small", []) == []


def test_embed_other_dimension_and_api_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeLLMServer(embedding_dim=16) as server:
        vectors = embed("openai/text-embedding-3-small", ["x"], api_base=server.url)
    assert [len(v) for v in vectors] == [16]


# -- errors ----------------------------------------------------------------------------


def test_rejected_key_is_missing_key_error(fake_llm: FakeLLMServer, route: str) -> None:
    fake_llm.enqueue_error(401, "Incorrect API key provided: sk-test")
    with pytest.raises(MissingKeyError) as info:
        chat(route).complete(MESSAGES)
    assert str(info.value) == (
        "The provider rejected the API key for openai/gpt-4o-mini: check OPENAI_API_KEY."
    )
    assert info.value.__cause__ is not None
    assert len(fake_llm.chat_requests()) == 1  # a 401 is not retried


def test_rejected_key_while_streaming(fake_llm: FakeLLMServer, route: str) -> None:
    fake_llm.enqueue_error(401, "Incorrect API key provided")
    with pytest.raises(MissingKeyError, match="rejected the API key"):
        list(chat(route).stream(MESSAGES))


def test_no_key_at_all(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(MissingKeyError) as info:
        list(chat(route).stream(MESSAGES))
    assert str(info.value) == (
        "No API key for openai/gpt-4o-mini: set OPENAI_API_KEY, or pick another model with --model."
    )
    assert fake_llm.requests == []


def test_no_key_for_another_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    model = ChatModel("anthropic/claude-3-haiku-20240307", num_retries=0)
    with pytest.raises(MissingKeyError) as info:
        model.complete(MESSAGES)
    assert str(info.value) == (
        "No API key for anthropic/claude-3-haiku-20240307: set ANTHROPIC_API_KEY,"
        " or pick another model with --model."
    )


def test_no_key_is_found_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingKeyError) as info:
        list(ChatModel("gemini/gemini-1.5-flash").stream(MESSAGES))
    assert str(info.value) == (
        "No API key for gemini/gemini-1.5-flash: set GEMINI_API_KEY,"
        " or pick another model with --model."
    )
    assert info.value.__cause__ is None
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingKeyError, match="set OPENAI_API_KEY"):
        embed("openai/text-embedding-3-small", ["x"])


def test_no_key_with_custom_endpoint(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    """With an explicit api_base the call goes out; the client's own complaint is mapped."""
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(MissingKeyError) as info:
        chat(route, api_base=fake_llm.url).complete(MESSAGES)
    assert str(info.value) == (
        "No API key for openai/gpt-4o-mini: set OPENAI_API_KEY, or pick another model with --model."
    )
    assert info.value.__cause__ is not None
    assert len(fake_llm.chat_requests()) == 0


def test_unknown_model_without_provider(fake_llm: FakeLLMServer) -> None:
    with pytest.raises(UnknownModelError) as info:
        ChatModel("nonexistent-model-xyz").complete(MESSAGES)
    assert str(info.value) == (
        "Unknown model 'nonexistent-model-xyz': use a litellm model name such as"
        f" openai/gpt-4o-mini or ollama/llama3; see {PROVIDERS}"
    )
    assert "\n" not in str(info.value)
    with pytest.raises(UnknownModelError):
        list(ChatModel("nonexistent-model-xyz").stream(MESSAGES))
    assert fake_llm.requests == []


def test_model_not_found_on_server(fake_llm: FakeLLMServer, route: str) -> None:
    fake_llm.enqueue_error(404, "The model `nope` does not exist")
    with pytest.raises(UnknownModelError) as info:
        ChatModel("openai/nope", retry_delay=0.01, route=route).complete(MESSAGES)
    assert str(info.value) == (
        "Unknown model 'openai/nope' (the provider answered 404: The model `nope` does not"
        f" exist): check the model name and the API base URL; see {PROVIDERS}"
    )
    assert len(fake_llm.chat_requests()) == 1


def test_rate_limit_then_success_is_retried(fake_llm: FakeLLMServer, route: str) -> None:
    fake_llm.enqueue_error(429, "Rate limit reached")
    fake_llm.enqueue("Recovered after a pause")
    assert "".join(chat(route).stream(MESSAGES)) == "Recovered after a pause"
    fake_llm.enqueue_error(429, "Rate limit reached")
    fake_llm.enqueue("Again")
    assert chat(route).complete(MESSAGES) == "Again"
    assert len(fake_llm.chat_requests()) == 4


def test_rate_limit_exhausts_retries(fake_llm: FakeLLMServer, route: str) -> None:
    for _ in range(3):
        fake_llm.enqueue_error(429, "Rate limit reached")
    with pytest.raises(ModelRequestError) as info:
        chat(route, num_retries=2).complete(MESSAGES)
    assert str(info.value) == (
        "openai/gpt-4o-mini is rate limiting requests (HTTP 429) after 3 attempts:"
        " wait a minute and retry, or check your plan's limits."
    )
    assert len(fake_llm.chat_requests()) == 3


def test_server_error_after_retries(fake_llm: FakeLLMServer, route: str) -> None:
    for _ in range(3):
        fake_llm.enqueue_error(500, "boom")
    started = time.monotonic()
    with pytest.raises(ModelRequestError) as info:
        list(chat(route, num_retries=2).stream(MESSAGES))
    assert time.monotonic() - started < 5
    assert str(info.value) == (
        "openai/gpt-4o-mini failed with HTTP 500 (boom) after 3 attempts:"
        " retry later, or check the endpoint."
    )
    assert len(fake_llm.chat_requests()) == 3
    assert fake_llm.pending() == 0


def test_server_error_without_retries(fake_llm: FakeLLMServer, route: str) -> None:
    fake_llm.enqueue_error(503, "overloaded")
    with pytest.raises(ModelRequestError) as info:
        chat(route, num_retries=0).complete(MESSAGES)
    assert str(info.value) == (
        "openai/gpt-4o-mini failed with HTTP 503 (overloaded): retry later, or check the endpoint."
    )


def test_context_window_exceeded(fake_llm: FakeLLMServer, route: str) -> None:
    fake_llm.enqueue_error(
        400,
        "This model's maximum context length is 128000 tokens. However, your messages"
        " resulted in 200000 tokens.",
    )
    with pytest.raises(ModelRequestError) as info:
        chat(route).complete(MESSAGES)
    assert str(info.value) == (
        "The prompt is too long for openai/gpt-4o-mini's context window: shorten the"
        " conversation or pick a model with a larger context."
    )
    assert len(fake_llm.chat_requests()) == 1


def test_other_client_error(fake_llm: FakeLLMServer, route: str) -> None:
    fake_llm.enqueue_error(400, "Invalid value for 'temperature'.\nSecond line")
    with pytest.raises(ModelRequestError) as info:
        chat(route).complete(MESSAGES)
    assert str(info.value) == (
        "openai/gpt-4o-mini rejected the request (HTTP 400: Invalid value for"
        " 'temperature'. Second line): check the model's settings."
    )


def test_timeout(fake_llm: FakeLLMServer, route: str) -> None:
    fake_llm.enqueue("too late", delay=1.5)
    with pytest.raises(ModelRequestError) as info:
        chat(route, timeout=0.5, num_retries=0).complete(MESSAGES)
    assert str(info.value) == (
        "openai/gpt-4o-mini did not answer within 0.5 s: retry later, or check the endpoint."
    )


def test_connection_refused(fake_llm: FakeLLMServer, route: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ModelRequestError) as info:
        list(chat(route, api_base=url, num_retries=1).stream(MESSAGES))
    assert str(info.value) == (
        f"Could not connect to the endpoint of openai/gpt-4o-mini at {url} after 2 attempts:"
        " check that the server is running and the API base URL is right."
    )


def test_cut_stream_keeps_partial_text(fake_llm: FakeLLMServer, route: str) -> None:
    fake_llm.enqueue_cut_stream("partial text here")
    received: list[str] = []
    with pytest.raises(StreamBrokenError) as info:
        for chunk in chat(route).stream(MESSAGES):
            received.append(chunk)
    assert received == ["partial ", "text ", "here"]
    assert str(info.value) == (
        "The reply stream from openai/gpt-4o-mini broke off after 17 characters: try again."
    )
    assert info.value.__cause__ is not None
    assert len(fake_llm.chat_requests()) == 1  # never retried once text was shown


def test_stream_ending_without_finish(fake_llm: FakeLLMServer, route: str) -> None:
    fake_llm.enqueue_cut_stream("half a", clean=True)
    received: list[str] = []
    with pytest.raises(StreamBrokenError) as info:
        for chunk in chat(route).stream(MESSAGES):
            received.append(chunk)
    assert "".join(received) == "half a"
    assert str(info.value) == (
        "The reply stream from openai/gpt-4o-mini broke off after 6 characters: try again."
    )


def test_embed_errors(fake_llm: FakeLLMServer) -> None:
    fake_llm.enqueue_error(401, "bad key")
    with pytest.raises(MissingKeyError) as info:
        embed("openai/text-embedding-3-small", ["x"])
    assert str(info.value) == (
        "The provider rejected the API key for openai/text-embedding-3-small: check OPENAI_API_KEY."
    )
    with pytest.raises(UnknownModelError):
        embed("nonexistent-embedder", ["x"])


# -- the fake server itself -----------------------------------------------------------


def test_control_endpoint_and_script_file(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"text": "from file"}, {"error": 429, "message": "slow"}]))
    with FakeLLMServer(script_file=script) as server:
        assert server.pending() == 2
        request = urllib.request.Request(
            server.url.removesuffix("/v1") + "/_control/enqueue",
            data=json.dumps({"cut": "half"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read()) == {"ok": True, "pending": 3}
        assert server.requests == []
        assert server.env() == {
            "OPENAI_API_BASE": server.url,
            "OPENAI_BASE_URL": server.url,
            "OPENAI_API_KEY": "sk-test",
        }


# -- other processes -------------------------------------------------------------------


def test_import_is_lazy() -> None:
    code = "import sys, memory.models.llm; print('litellm' in sys.modules, 'openai' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_model_facts_without_importing_litellm() -> None:
    """Context window and prices come from litellm's data file, read as JSON."""
    code = textwrap.dedent(
        """
        import sys
        from memory.models import model_info
        from memory.models.llm import ChatModel
        facts = model_info.facts("openai/gpt-4o-mini")
        print(ChatModel("openai/gpt-4o-mini").context_window(), facts.provider,
              facts.input_cost_per_token > 0, facts.output_cost_per_token > 0,
              ChatModel("anthropic/claude-haiku-4-5").context_window(),
              ChatModel("openai/no-such-model-here").context_window(),
              'litellm' in sys.modules, 'openai' in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "128000",
        "openai",
        "True",
        "True",
        "200000",
        "None",
        "False",
        "False",
    ]


def test_which_path_a_model_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOSTED_VLLM_API_BASE", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    routes = {
        "openai/gpt-4o-mini": "openai",
        "gpt-4o-mini": "openai",  # a bare name the data file gives to openai
        "anthropic/claude-3-haiku-20240307": "litellm",
        "claude-3-haiku-20240307": "litellm",
        "ollama/llama3": "litellm",
        "hosted_vllm/qwen": "litellm",  # no api_base: litellm knows its default
        "local/gemma-3-270m": "local",
    }
    assert {name: ChatModel(name).route for name in routes} == routes
    assert ChatModel("hosted_vllm/qwen", api_base="http://127.0.0.1:8000/v1").route == "openai"
    assert ChatModel("openai/gpt-4o-mini", route="litellm").route == "litellm"
    assert ChatModel("openai/gpt-4o-mini").describe() == "openai/gpt-4o-mini via the openai SDK"
    assert (
        ChatModel("openai/llama3", api_base="http://127.0.0.1:11434/v1").describe()
        == "openai/llama3 via the openai SDK at http://127.0.0.1:11434/v1"
    )
    assert ChatModel("ollama/llama3").describe() == "ollama/llama3 via litellm"
    assert (
        ChatModel("local/gemma-3-270m").describe()
        == "local/gemma-3-270m via llama.cpp in this process"
    )


def test_openai_compatible_server_without_a_key(fake_llm: FakeLLMServer) -> None:
    """A vLLM-style provider at an api_base goes through the SDK, with no key needed."""
    fake_llm.enqueue("from vllm")
    model = ChatModel("hosted_vllm/qwen", api_base=fake_llm.url, num_retries=0)
    assert model.route == "openai"
    assert "".join(model.stream(MESSAGES)) == "from vllm"
    assert fake_llm.last_request()["model"] == "qwen"


# -- a provider that is not OpenAI-compatible, through litellm -------------------------


def anthropic(server: FakeLLMServer, **kwargs: object) -> ChatModel:
    options: dict[str, object] = {"num_retries": 2, "retry_delay": 0.01, "timeout": 5.0}
    options.update(kwargs)
    base = server.url.removesuffix("/v1")
    return ChatModel("anthropic/claude-3-haiku-20240307", api_base=base, **options)  # type: ignore[arg-type]


def test_anthropic_model_through_litellm(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    model = anthropic(fake_llm)
    assert model.route == "litellm"
    fake_llm.enqueue("Hello from Claude")
    assert list(model.stream(MESSAGES)) == ["Hello ", "from ", "Claude"]
    assert model.usage == Usage(prompt_tokens=5, completion_tokens=3, total_tokens=8)
    request = fake_llm.anthropic_requests()[-1]
    assert request["stream"] is True
    assert fake_llm.headers[-1]["x-api-key"] == "sk-ant-test"
    fake_llm.enqueue("Whole")
    assert model.complete(MESSAGES) == "Whole"


def test_anthropic_errors_are_the_same_words(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    name = "anthropic/claude-3-haiku-20240307"
    fake_llm.enqueue_error(401, "invalid x-api-key")
    with pytest.raises(MissingKeyError) as info:
        list(anthropic(fake_llm).stream(MESSAGES))
    assert str(info.value) == (
        f"The provider rejected the API key for {name}: check ANTHROPIC_API_KEY."
    )
    for _ in range(2):
        fake_llm.enqueue_error(429, "slow down")
    with pytest.raises(ModelRequestError) as info:
        anthropic(fake_llm, num_retries=1).complete(MESSAGES)
    assert str(info.value) == (
        f"{name} is rate limiting requests (HTTP 429) after 2 attempts: wait a minute and"
        " retry, or check your plan's limits."
    )
    fake_llm.enqueue_error(500, "boom")
    with pytest.raises(ModelRequestError) as info:
        anthropic(fake_llm, num_retries=0).complete(MESSAGES)
    assert str(info.value) == (
        f"{name} failed with HTTP 500 (boom): retry later, or check the endpoint."
    )
    fake_llm.enqueue_cut_stream("partial text")
    with pytest.raises(StreamBrokenError, match="broke off after 12 characters"):
        list(anthropic(fake_llm).stream(MESSAGES))
    fake_llm.enqueue("late", delay=1.5)
    with pytest.raises(ModelRequestError) as info:
        anthropic(fake_llm, num_retries=0, timeout=0.5).complete(MESSAGES)
    assert str(info.value) == (
        f"{name} did not answer within 0.5 s: retry later, or check the endpoint."
    )


def test_subprocess_reaches_server_quietly(fake_llm_server: FakeLLMServer) -> None:
    """A CLI-like child process uses env() only, and litellm prints nothing of its own."""
    fake_llm_server.enqueue("child reply")
    fake_llm_server.enqueue_error(401, "bad key")
    code = textwrap.dedent(
        """
        from memory.errors import ModelError
        from memory.models.llm import ChatModel
        model = ChatModel("openai/gpt-4o-mini", num_retries=0)
        print("".join(model.stream([{"role": "user", "content": "hi from child"}])))
        try:
            model.complete([{"role": "user", "content": "again"}])
        except ModelError as err:
            print("ERR", err)
        import sys
        print("litellm imported:", "litellm" in sys.modules)
        """
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_API_KEY") and not k.startswith("OPENAI_")
    }
    env.update(fake_llm_server.env())
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "child reply",
        "ERR The provider rejected the API key for openai/gpt-4o-mini: check OPENAI_API_KEY.",
        "litellm imported: False",
    ]
    assert result.stderr == ""
    assert fake_llm_server.last_messages() == [{"role": "user", "content": "again"}]


# -- embedders (issue 12, item 11) ----------------------------------------------------


def test_provider_embedder_uses_the_configured_api_base(
    fake_llm_server: FakeLLMServer, cli: Any, mem_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config file's api_base reached the chat model but not the embedder, whose
    calls went to the provider's default endpoint instead."""
    for name in ("OPENAI_API_BASE", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    (mem_home / "config.toml").write_text(
        f'api_base = "{fake_llm_server.url}"\nembedder = "openai/text-embedding-3-small"\n'
    )
    cli("remember", "My dog is called Rex")
    assert fake_llm_server.embedding_requests()[-1]["input"] == ["My dog is called Rex"]
    explicit = LiteLLMEmbedder("openai/text-embedding-3-small", api_base=fake_llm_server.url)
    assert explicit.dim == 8


def test_query_expansion_uses_the_static_table_whatever_the_embedder(
    cli: Any, mem_home: Path
) -> None:
    """Chosen and documented: expansion is the static table's offline lookup, also when
    the vectors come from another embedder (here hash-256, which knows only spelling)."""
    (mem_home / "config.toml").write_text('embedder = "hash-256"\n')
    cli("remember", "I have two dogs and a cat")
    cli("remember", "The invoice is due on Friday")
    hits = cli.json("search", "pets")
    assert hits and "dogs" in hits[0]["content"]
    assert "Query expansion always uses minilm-static-256" in " ".join(
        cli("reindex", "--help").stdout.split()
    )


# -- what a `mem ask` costs ------------------------------------------------------------


def test_ask_imports_neither_litellm_nor_a_tokenizer(
    fake_llm_server: FakeLLMServer, mem_home: Path
) -> None:
    """`mem ask` to an OpenAI-compatible server: the openai SDK only (litellm cost 3 s
    and 200 MB), and no tiktoken encoding while the prompt fits by its byte length."""
    fake_llm_server.enqueue("Hi there")
    fake_llm_server.enqueue("Hello again")
    code = textwrap.dedent(
        """
        import sys
        from typer.testing import CliRunner
        from cli.main import app
        result = CliRunner().invoke(app, ["ask", "-m", "openai/gpt-4o-mini", "hello"])
        assert result.exit_code == 0, result.output
        print(result.stdout.strip())
        print("litellm" in sys.modules, "tiktoken" in sys.modules, "openai" in sys.modules)
        verbose = CliRunner().invoke(app, ["ask", "-m", "openai/gpt-4o-mini", "-v", "hi"])
        print(verbose.stderr, file=sys.stderr)  # -v shows the path (and exact counts)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(fake_llm_server.env(), MEM_HOME=str(mem_home))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == ["Hi there", "False False True"]
    assert f"model openai/gpt-4o-mini via the openai SDK at {fake_llm_server.url}" in result.stderr


def test_a_prompt_that_fits_by_bytes_is_the_exact_prompt() -> None:
    from memory.assistant.budget import assemble
    from memory.models.tokens import at_most, counter
    from memory.records import Memory, Message

    stamp = "2025-03-01T10:00:00"
    facts = [
        Memory(i, "default", "fact", f"fact number {i} " * 3, "user", 0.5, 1.0, stamp, stamp)
        for i in range(1, 30)
    ]
    recent = [Message(i, "c1", "user", f"turn {i} " * 20, stamp) for i in range(1, 40)]
    count = counter(None)
    for budget in (200_000, 1500):  # everything fits by bytes; then it does not
        calls: list[str] = []

        def exact(text: str, calls: list[str] = calls) -> int:
            calls.append(text)
            return count(text)

        kwargs = {"current": "What do I like?", "budget": budget, "reserve": 256}
        quick = assemble(count=exact, bound=at_most, profile=facts, recent=recent, **kwargs)  # type: ignore[arg-type]
        assert (calls == []) is (budget == 200_000)
        slow = assemble(count=count, profile=facts, recent=recent, **kwargs)  # type: ignore[arg-type]
        assert quick.messages == slow.messages and quick.dropped == slow.dropped
        assert [p.tokens for p in quick.parts] == [p.tokens for p in slow.parts]
    assert slow.dropped  # the small budget did drop something


def test_repl_preloads_the_model_path_while_the_user_types(mem_home: Path) -> None:
    """The REPL's first reply paid the SDK's import (and the embedder's table) after
    the user pressed Enter; they now start in the background once the prompt shows."""
    code = textwrap.dedent(
        """
        import sys, threading
        from cli.repl import Repl
        from memory.assistant.turn import Assistant, Settings
        from memory.store import MemoryStore
        with MemoryStore.open(None) as store:
            repl = Repl(Assistant(store, Settings(model="openai/gpt-4o-mini")))
            print("openai" in sys.modules)
            repl.preload()
            for thread in threading.enumerate():
                if thread.name.startswith("mem-") and thread.name.endswith("-preload"):
                    thread.join(60)
            from memory.models import static_embed
            loaded = static_embed._table is not None
            print("openai" in sys.modules, "litellm" in sys.modules, loaded)
        """
    )
    env = dict(os.environ, MEM_HOME=str(mem_home), OPENAI_API_KEY="sk-test")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "False", "True"]
