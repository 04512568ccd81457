"""Talking to models: the one seam, :class:`ChatModel`, over three paths.

Which path a model takes (:func:`memory.models.model_info.route`) is a visible fact
(``ChatModel.describe()``, printed by ``mem ask --show-prompt`` and ``-v``):

- ``openai``: OpenAI and any OpenAI-compatible endpoint, through the ``openai`` SDK
  (:mod:`memory.models.llm_openai`, half a second to import);
- ``litellm``: every other provider (:mod:`memory.models.llm_litellm`, imported only then:
  three seconds and 200 MB);
- ``local``: the embedded offline model, llama.cpp in this process
  (:mod:`memory.models.local_model`);
- ``plugin``: a model prefix registered by a plugin (:mod:`memory.plugins`), whose
  object answers ``stream(messages)``.

Nothing heavy is imported at module import. Every failure comes out as one of the named
errors of :mod:`memory.errors` with a one-line message that says the fix, worded once
in :mod:`memory.models.llm_errors` for both remote paths; the original exception stays
attached as ``__cause__``. Model facts (context window, prices) come from
:mod:`memory.models.model_info`, which reads litellm's data file without importing litellm.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from memory.errors import MemError, ModelError, ModelRequestError
from memory.models import model_info
from memory.models.llm_base import Usage as Usage  # re-exported: memory.models.llm is the seam
from memory.models.llm_base import usage_of as usage_of
from memory.models.llm_errors import (  # re-exported (__all__): memory.models.llm is the seam
    COMMON_KEY_VARS,
    PROVIDER_KEY_VARS,
    PROVIDERS_URL,
    REQUIRED_KEY_VARS,
    Failure,
    check_key,
    describe_failure,
    has_provider_key,
    is_missing_key_text,
    key_var_for,
    one_line,
    unknown_model_error,
)

if TYPE_CHECKING:
    from memory.models.sections import PromptSections

__all__ = [
    "COMMON_KEY_VARS",
    "PROVIDER_KEY_VARS",
    "PROVIDERS_URL",
    "REQUIRED_KEY_VARS",
    "ROUTES",
    "ChatModel",
    "Failure",
    "Usage",
    "check_key",
    "describe_failure",
    "embed",
    "has_provider_key",
    "is_missing_key_text",
    "key_var_for",
    "one_line",
    "preload_in_background",
    "unknown_model_error",
    "usage_of",
]

ROUTES = ("openai", "litellm", "local")  # and "plugin", chosen only by the registry
DEFAULT_RETRY_DELAY = 0.5  # seconds before the first retry; doubles each time


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
        self._factory: Any = None  # the registry's, for this name's prefix
        if route is None:
            self._factory, builtin = _registered(model)
            if self._factory is not None and not builtin:
                self.route = "plugin"

    def __repr__(self) -> str:
        return f"ChatModel({self.name!r}, route={self.route!r})"

    def describe(self) -> str:
        """Which path this model takes, in words (for --show-prompt and -v)."""
        if self.route == "plugin":
            from memory.plugins import origin

            prefix = self.name.partition("/")[0].lower()
            return f"{self.name} via the plugin {origin('chat model', prefix)}"
        text = f"{self.name} via {model_info.ROUTE_LABELS[self.route]}"
        if self.route == "openai":
            from memory.models.llm_openai import endpoint

            base = endpoint(self.name, self.api_base, self.api_key)[1]
            text += f" at {base}" if base else ""
        elif self.api_base:
            text += f" at {self.api_base}"
        return text

    def failed(self, failure: Failure, exc: BaseException, *, attempts: int) -> ModelError:
        """The named error for a failed call (``exc`` becomes its cause)."""
        api_base = self.api_base
        if self.route == "openai" and api_base is None:
            from memory.models.llm_openai import endpoint

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
        """The openai, litellm or a plugin's path, after the checks that need no request."""
        if self._path is None and self.route == "plugin":
            self._path = _PluginPath(self, self._factory(self))
        if self._path is None:
            if "/" not in self.name and model_info.provider_of(self.name) is None:
                raise unknown_model_error(self.name)  # no provider: litellm would say so
            check_key(self.name, api_key=self.api_key, api_base=self.api_base)
            self._path = (self._factory or builtin_path)(self)
        return self._path

    def preload(self) -> None:
        """Import (or load) what the first reply needs; for a background thread."""
        if self.route == "local":
            from memory.models.local_model import check_name, get_llama, require_installed

            check_name(self.name)  # no 250 MB load for a mistyped name
            require_installed(self.name)
            get_llama()
        elif self.route == "plugin":
            self._remote().preload()
        elif self.route == "openai":
            from memory.models.llm_openai import preload

            preload()
        else:
            from memory.models.llm_litellm import preload as preload_litellm

            preload_litellm()

    def stream(
        self, messages: list[dict[str, str]], *, sections: PromptSections | None = None
    ) -> Iterator[str]:
        """Yield the reply's text chunks as they arrive.

        ``sections`` (from :func:`memory.assistant.budget.assemble`) is what the offline model
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
        from memory.models import local_model

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
        from memory.models.local_model import render_prompt

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
            from memory.models.local_model import CONTEXT_WINDOW

            return CONTEXT_WINDOW
        if self.route == "plugin":
            window = getattr(self._remote().model, "context_window", None)
            return window if isinstance(window, int) and window > 0 else None
        return model_info.facts(self.name).context_window


def _registered(model: str) -> tuple[Any, bool]:
    """The registry's factory for ``model``'s prefix and whether it is mem's own
    (then :func:`memory.models.model_info.route` picks the path, as it always did); None
    for a bare or unknown-prefix name, which takes mem's own paths too."""
    from memory import plugins

    # A bare name litellm's data knows (gpt-4o-mini) is not worth reading entry points for.
    known = "/" not in model and model_info.entry(model) is not None
    factory = plugins.chat_model_factory(model, installed=not known)
    prefix = model.partition("/")[0].lower()
    return factory, factory is None or plugins.is_builtin("chat model", prefix)


def builtin_path(chat: ChatModel) -> Any:
    """The openai SDK or litellm path (what the default plugin registers for every
    provider prefix mem knows; the local route runs in :class:`ChatModel` itself)."""
    if chat.route == "openai":
        from memory.models.llm_openai import OpenAIPath

        return OpenAIPath(chat)
    from memory.models.llm_litellm import LiteLLMPath

    return LiteLLMPath(chat)


class _PluginPath:
    """A plugin's model object behind the calls ChatModel makes of a path: its
    ``stream(messages)`` (all it must have), errors turned into mem's."""

    def __init__(self, chat: ChatModel, model: Any) -> None:
        if not callable(getattr(model, "stream", None)):
            raise ModelError(f"The plugin for {chat.name} gave {model!r}, which has no stream().")
        self.chat = chat
        self.model = model

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        try:
            for piece in self.model.stream(messages):
                yield str(piece)
        except MemError:
            raise
        except Exception as exc:
            raise ModelRequestError(
                f"{self.chat.name} (a plugin's model) failed: {one_line(str(exc) or repr(exc))}"
            ) from exc

    def complete(self, messages: list[dict[str, str]], *, json_mode: bool) -> tuple[str, None]:
        return "".join(self.stream(messages)), None

    def preload(self) -> None:
        preload = getattr(self.model, "preload", None)
        if callable(preload):
            preload()


def preload_in_background(model: str | None, api_base: str | None = None) -> None:
    """Start importing (or loading) what ``model``'s first reply needs, in a daemon
    thread, so it overlaps opening the store, searching and assembling the prompt.
    Failures are left for the real call to report, in its own words."""
    if not model:
        return
    try:
        chat = ChatModel(model, api_base=api_base)
        if chat.route != "local":
            chat._remote()  # an unknown name or a missing key: nothing worth loading
    except Exception:
        return

    def work() -> None:
        try:
            chat.preload()
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
    from memory.models.llm_litellm import embed as litellm_embed

    vectors = litellm_embed(settings, texts)
    if len(vectors) != len(texts):
        raise ModelRequestError(
            f"{model} returned {len(vectors)} embeddings for {len(texts)} texts:"
            " check the embedding model."
        )
    return vectors
