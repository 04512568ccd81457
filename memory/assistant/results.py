"""What a turn hands back: the state between its steps (:class:`Prepared`) and
its outcome (:class:`TurnResult`), apart from the pipeline that makes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memory.assistant.budget import AssembledPrompt
from memory.records import Hit

if TYPE_CHECKING:
    from memory.formation.consolidation import Change
    from memory.models.llm import Usage


@dataclass
class Prepared:
    """Everything decided before the model is called."""

    text: str
    message_id: int | None
    prompt: AssembledPrompt


@dataclass
class TurnResult:
    reply: str
    conversation: str
    prompt: AssembledPrompt
    memory_changes: list[Change] = field(default_factory=list)
    usage: Usage | None = None
    interrupted: bool = False

    @property
    def memories_used(self) -> list[Hit]:
        return self.prompt.memories_used

    def to_dict(self) -> dict[str, Any]:
        usage = self.usage
        return {
            "reply": self.reply,
            "conversation": self.conversation,
            "memories_used": [h.to_dict() for h in self.memories_used]
            + [
                {"id": m.id, "kind": m.kind, "content": m.content, "profile_fact": True}
                for m in self.prompt.profile_used
            ],
            "memory_changes": [c.to_dict() for c in self.memory_changes],
            "usage": None
            if usage is None
            else {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
            "interrupted": self.interrupted,
        }
