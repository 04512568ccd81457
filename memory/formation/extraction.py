"""Implicit memory formation: candidate facts about the user, taken from the chat buffer.

Two extractors share one output type, :class:`~memory.formation.candidate.Candidate`:
``extract_rules`` (:mod:`memory.formation.rules`) is deterministic and offline, so memory
works with no model configured and tests stay exact; ``extract_with_model``
(:mod:`memory.formation.model_extraction`) asks a model for JSON and parses it defensively.
Only the standard library is imported: this runs after every reply and must load fast.
"""

from __future__ import annotations

from memory.formation.candidate import Candidate
from memory.formation.model_extraction import (
    EXTRACTION_SCHEMA,
    build_extraction_prompt,
    extract_with_model,
    parse_model_output,
)
from memory.formation.rules import extract_rules

__all__ = [
    "EXTRACTION_SCHEMA",
    "Candidate",
    "build_extraction_prompt",
    "extract_rules",
    "extract_with_model",
    "parse_model_output",
]
