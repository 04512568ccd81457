"""The completion prompt for the offline *base* model (:mod:`memory.models.local_model`).

Through llama.cpp's chat template a base model rambles; given the facts and a completion
prompt ending in ``Q: …\\nA:`` it answers from them. :func:`format_prompt` turns the
structured parts that :mod:`memory.assistant.budget` assembles
(:class:`memory.models.sections.PromptSections`, not its Markdown) into that shape, dropping
the least needed parts first when it must fit a token limit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from memory.models.sections import PromptSections
from memory.records import Hit


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fact(hit: Hit) -> str:
    """A retrieved memory as a line a base model can use ("" to leave it out).

    The user's own words stay as said, so "my dog" in a question meets "My dog …" in a
    fact; someone else is named ("Ann: …"). Past questions and the assistant's own past
    replies are left out: they are not facts, and a base model would repeat them.
    """
    text = _one_line(hit.content)
    if hit.kind != "message":
        return text
    speaker = (hit.speaker or "someone").strip()
    if speaker.lower() == "assistant" or text.endswith("?"):
        return ""
    if speaker.lower() not in ("user", "someone", "you"):
        return f"{speaker}: {text}"
    return text


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


def sections_from_messages(messages: Sequence[dict[str, Any]]) -> PromptSections:
    """Plain chat messages (no assembled prompt): the turns and the question; a system
    message is not parsed (its layout belongs to memory.assistant.budget)."""
    chat = [m for m in messages if m.get("role") in ("user", "assistant")]
    current = ""
    if chat and chat[-1].get("role") == "user":
        current = str(chat.pop().get("content") or "")
    return PromptSections(
        recent=[(str(m["role"]), str(m.get("content") or "")) for m in chat], current=current
    )


def prompt_parts(sections: PromptSections) -> PromptParts:
    """The completion prompt's parts from the structured parts of memory.assistant.budget."""
    facts: list[str] = []
    for fact in [_one_line(m.content) for m in sections.facts] + [
        _fact(h) for h in sections.memories
    ]:
        if fact and fact not in facts:
            facts.append(fact)
    return PromptParts(
        instructions=[_one_line(i) for i in sections.instructions if i.strip()],
        facts=facts,
        summary=_one_line(sections.summary),
        # In-context examples read as earlier Q/A turns: few-shot, as a base model learns.
        turns=[
            (role, _one_line(text))
            for pair in sections.examples[::-1]
            for role, text in zip(("user", "assistant"), pair, strict=True)
        ]
        + [(role, _one_line(text)) for role, text in sections.recent if text.strip()],
        question=_one_line(sections.current),
    )


def format_prompt(
    source: PromptSections | Sequence[dict[str, Any]],
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
    if not isinstance(source, PromptSections):
        source = sections_from_messages(source)
    parts = prompt_parts(source)
    text = parts.render()
    if count is None or limit is None:
        return text
    # A prompt within the limit in bytes is within it in tokens: no tokenizer needed.
    while len(text.encode("utf-8", "surrogatepass")) > limit and count(text) > limit:
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
