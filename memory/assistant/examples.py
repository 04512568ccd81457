"""In-context examples: pairs of a message and the wanted reply, shown in the prompt.

A few examples of the wanted behaviour teach a model a task without fine-tuning.
Each is a memory of kind ``example`` whose content is ``INPUT => OUTPUT`` (so
``mem list``, search and ``forget --query`` see both sides, as the user wrote
them) and whose metadata holds ``input``, ``output`` and an optional ``task``.
The secret gate sees content and metadata, as it sees every write.

For a turn, :class:`ExampleShelf` brings the few examples most similar to the
message: ranked by words and vectors (hybrid, over the examples only), then a
floor on the cosine similarity of the message to each example's *input* (what a
message resembling it looks like; the output would dilute it), so an
unrelated message gets none (a ranking is relative: the best of bad matches
still comes first). They fit under their own small token budget
(``example_tokens``). A profile with no examples pays one indexed lookup per
change of the database (keyed on ``change_mark``, as the turn's instructions
are), not a search per turn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from memory.errors import UsageError
from memory.models.tokens import at_most
from memory.records import Hit, Memory
from memory.retrieval.search import Filters, search
from memory.text import content_words, stem

if TYPE_CHECKING:
    from memory.store import MemoryStore

KIND = "example"
EXAMPLE_LIMIT = 3  # examples in one prompt, at most
# Cosine of the message to an example's input below which the example is not
# shown, whatever search ranked it: unrelated texts score under 0.25 with the
# offline embedders, another message of the same task 0.4-0.95.
SIMILARITY_FLOOR = 0.35
HEADING = "## Examples of the wanted behaviour"
# Examples scored here, exactly, without searching the store (see ExampleShelf).
DIRECT_LIMIT = 200
# What the share of the message's words an example holds adds to its cosine.
WORD_WEIGHT = 0.3


def _stems(text: str) -> frozenset[str]:
    return frozenset(stem(w) for w in content_words(text))


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    return dot / norm if norm else 0.0


@dataclass(frozen=True)
class Example:
    """One example as the prompt and ``mem example list`` show it."""

    id: int
    input: str
    output: str
    task: str | None = None
    similarity: float = 0.0

    @classmethod
    def of(cls, memory: Memory | Hit) -> Example:
        """The example a memory (or a search hit) of kind ``example`` holds."""
        meta = memory.metadata
        given, task = meta.get("input"), meta.get("task")
        output = str(meta.get("output") or "")
        return cls(
            memory.id,
            str(given) if given else memory.content.removesuffix(f" => {output}"),
            output,
            str(task) if task else None,
        )

    def render(self) -> str:
        head = f"Example #{self.id}" + (f" ({self.task})" if self.task else "")
        return f"{head}\nInput: {self.input}\nOutput: {self.output}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "input": self.input,
            "output": self.output,
            "task": self.task,
            "similarity": round(self.similarity, 4),
        }


def add_example(
    store: MemoryStore,
    input: str,
    output: str,
    *,
    task: str | None = None,
    source: str = "user",
    source_message_ids: Sequence[int] = (),
    conversation: str | None = None,
) -> Memory:
    """Store one example (secrets gated like every write). ``source_message_ids``:
    the exchange it was kept from (``/keep``); forgetting either message forgets it."""
    input, output = input.strip(), output.strip()
    if not input or not output:
        raise UsageError(
            "An example needs an input and an output: mem example add 'INPUT' 'OUTPUT'."
        )
    metadata: dict[str, Any] = {"input": input, "output": output}
    if task and task.strip():
        metadata["task"] = task.strip()
    ids = [int(i) for i in source_message_ids]
    if ids:
        metadata["source_message_ids"] = ids
    memory_id = store.add_memory(
        f"{input} => {output}",
        kind=KIND,
        source=source,
        importance=0.8,
        source_message_id=ids[0] if ids else None,
        conversation=conversation,
        metadata=metadata,
    )
    return store.get(memory_id)


def list_examples(store: MemoryStore, *, task: str | None = None) -> list[Example]:
    """The profile's examples, newest first; ``task`` keeps one task's."""
    found = [e for e in map(Example.of, store.list_memories(kind=KIND)) if e.output]
    return [e for e in found if task is None or e.task == task]


def fit(
    examples: Iterable[Example], count: Callable[[str], int], room: int
) -> tuple[list[Example], str]:
    """Whole examples, best first, while they fit in ``room`` tokens (with the
    heading); returns them and the prompt section ("" for none)."""
    kept: list[Example] = []
    spent = count(HEADING) + 1
    for example in examples:
        cost = count(example.render()) + 2
        if spent + cost > room:
            continue
        kept.append(example)
        spent += cost
    if not kept:
        return [], ""
    return kept, HEADING + "\n" + "\n\n".join(e.render() for e in kept)


class ExampleShelf:
    """The examples a turn's prompt carries, looked up cheaply.

    The profile's examples are read again only when the database's change mark
    moves (the turn reads it anyway), so a profile without examples does no
    search at all. Up to ``direct_limit`` of them are scored here, exactly,
    with the two signals of hybrid search: the share of the message's stemmed
    words an example's input holds, and the cosine of their vectors (the
    inputs' vectors are made once per example and kept while this lives).
    Searching the whole store with a kind filter would
    walk every keyword match of a common word (10-40 ms at 100k memories).
    Past that many examples, the store's hybrid search restricted to kind
    ``example`` finds the candidates. Either way the cosine floor decides."""

    def __init__(self, store: MemoryStore, *, direct_limit: int = DIRECT_LIMIT) -> None:
        self.store = store
        self.direct_limit = direct_limit
        self._mark: int | None = None
        self._examples: list[Example] | None = []  # None: too many to hold
        self._words: dict[int, frozenset[str]] = {}
        self._vectors: dict[tuple[int, str], list[float]] = {}

    def refresh(self, mark: int) -> None:
        """Note the database's change mark; re-read the examples when it moved."""
        if mark == self._mark:
            return
        self._mark = mark
        found = self.store.list_memories(kind=KIND, limit=self.direct_limit + 1)
        if len(found) > self.direct_limit:
            self._examples, self._words = None, {}
            return
        self._examples = [e for e in map(Example.of, found) if e.output]
        self._words = {e.id: _stems(e.input) for e in self._examples}

    def relevant(self, text: str, *, limit: int = EXAMPLE_LIMIT) -> list[Example]:
        """The examples most similar to ``text``, best first, above the floor."""
        if self._mark is None:
            self.refresh(self.store.backend.change_mark(self.store.scope))
        if self._examples == [] or limit < 1 or not text.strip():
            return []
        if self._examples is None:
            hits = search(self.store, text, limit=limit * 3, filters=Filters(kinds=(KIND,)))
            pool = [e for e in map(Example.of, hits) if e.output]
        else:
            pool = self._examples
        if not pool:
            return []
        sims = self._similarities(text, pool)
        asked = _stems(text)

        def score(e: Example) -> float:
            held = self._words.get(e.id) or _stems(e.input)
            shared = len(asked & held) / len(asked) if asked and held else 0.0
            return sims.get(e.id, 0.0) + WORD_WEIGHT * shared

        chosen = [e for e in pool if sims.get(e.id, 0.0) >= SIMILARITY_FLOOR]
        if self._examples is not None:  # search has ranked its own hits
            chosen.sort(key=lambda e: (-score(e), -e.id))
        return [replace(e, similarity=sims[e.id]) for e in chosen[:limit]]

    def _similarities(self, text: str, pool: Sequence[Example]) -> dict[int, float]:
        """Cosine of ``text`` to each example's input; the inputs embedded once."""
        missing = [e for e in pool if (e.id, e.input) not in self._vectors]
        if missing:
            made = self.store.embedder.embed([e.input for e in missing])
            self._vectors.update({(e.id, e.input): v for e, v in zip(missing, made, strict=True)})
        asked = self.store.embedder.embed([text])[0]
        return {e.id: _cosine(asked, self._vectors[(e.id, e.input)]) for e in pool}

    def block(self, text: str, room: int, count: Callable[[str], int]) -> tuple[list[Example], str]:
        """The examples and the prompt section for ``text`` within ``room``
        tokens. Fitted by the free byte bound first: the tokenizer is loaded
        only when the examples do not fit by it."""
        found = self.relevant(text) if room > 0 else []
        if not found:
            return [], ""
        kept, section = fit(found, at_most, room)
        if len(kept) < len(found):
            kept, section = fit(found, count, room)
        return kept, section
