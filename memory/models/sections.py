"""What a chat model is given besides chat messages: the prompt's parts as data.

Prompt assembly (memory.assistant.budget) fills these; a model that builds its own
prompt from them (the offline base model) reads them here, so the models package
never depends on the assistant that calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from memory.records import Hit, Memory


@dataclass
class PromptSections:
    """What the prompt holds, as data rather than Markdown: a model that is not given
    chat messages (the offline base model, memory.models.local_model) builds its own prompt
    from these, so rewording the layout here cannot silently change what it reads."""

    instructions: list[str] = field(default_factory=list)
    examples: list[tuple[str, str]] = field(default_factory=list)  # (input, output), best first
    facts: list[Memory] = field(default_factory=list)  # profile facts, in prompt order
    memories: list[Hit] = field(default_factory=list)  # retrieved, in prompt order
    summary: str = ""
    recent: list[tuple[str, str]] = field(default_factory=list)  # (role, text), oldest first
    current: str = ""
