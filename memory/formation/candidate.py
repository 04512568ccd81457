"""The one output type of both extractors: a statement about the user that may become a
memory. Kept apart so that consolidation, fact keys and the stores can name it without
loading either extractor."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Candidate:
    """A statement about the user that may become a memory.

    ``slot`` names what the statement is about, so a newer candidate with the same slot and
    another value can supersede an older memory; ``negated`` says the value stopped being true.
    """

    text: str
    kind: str = "fact"
    slot: str | None = None
    value: str | None = None
    negated: bool = False
    importance: float = 0.5
    confidence: float = 0.7
    source_index: int | None = None

    def gated(self, policy: str) -> tuple[Candidate, list[str]]:
        """This candidate with the secret gate applied to text, slot and value
        together (a value redacted in the text is redacted in ``value`` too),
        and what was found; ``refuse`` raises SecretRefusedError."""
        from memory.privacy.secrets_gate import apply_record

        fields = {"text": self.text, "slot": self.slot, "value": self.value}
        result = apply_record(fields, policy)
        if not result.findings:
            return self, []
        out = result.record
        return replace(self, text=out["text"], slot=out["slot"], value=out["value"]), list(
            result.findings
        )
