"""Token counting with tiktoken, offline.

tiktoken downloads its encodings on first use, which fails without network.
litellm ships ``cl100k_base`` and ``o200k_base`` under
``litellm/litellm_core_utils/tokenizers/`` named the way tiktoken's cache
expects, so ``TIKTOKEN_CACHE_DIR`` is pointed there (found with ``find_spec``,
without importing litellm). If no encoding can be loaded, counts fall back to
an estimate of four characters a token rather than failing a chat.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any

MESSAGE_OVERHEAD = 4  # role and separators of one chat message


def _point_cache_at_litellm() -> None:
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return
    folder = os.path.join(
        next(iter(spec.submodule_search_locations)), "litellm_core_utils", "tokenizers"
    )
    if os.path.isdir(folder):
        os.environ["TIKTOKEN_CACHE_DIR"] = folder


def encoding_name(model: str | None) -> str:
    """o200k for the GPT-4o/o-series family, cl100k for everything else."""
    name = (model or "").lower().rsplit("/", 1)[-1]
    if name.startswith(("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4")):
        return "o200k_base"
    return "cl100k_base"


@lru_cache(maxsize=4)
def _encoding(name: str) -> Any:
    _point_cache_at_litellm()
    try:
        import tiktoken

        return tiktoken.get_encoding(name)
    except Exception:  # offline without litellm's copy: estimate instead
        return None


def at_most(text: str) -> int:
    """A free upper bound of the token count: every token of a byte-level BPE is at
    least one byte. Loading an encoding costs 0.4 s and 32 MB (cl100k) to 0.7 s and
    85 MB (o200k), more than the rest of a `mem ask`; a prompt that fits by this bound
    needs no exact count (see :func:`memory.assistant.budget.assemble`)."""
    return len(text.encode("utf-8", "surrogatepass"))


def counter(model: str | None = None) -> Callable[[str], int]:
    """A function that counts the tokens of a text for ``model``; the encoding is
    loaded on its first call, not here."""
    name = encoding_name(model)

    @lru_cache(maxsize=8192)
    def count(text: str) -> int:
        # Cached: instructions, profile facts and recent turns recur every turn.
        enc = _encoding(name)
        if enc is None:
            return (len(text) + 3) // 4
        return len(enc.encode(text, disallowed_special=()))

    return count


def count_messages(messages: list[dict[str, str]], count: Callable[[str], int]) -> int:
    return sum(count(m["content"]) + MESSAGE_OVERHEAD for m in messages) + 2
