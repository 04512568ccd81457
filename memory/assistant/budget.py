"""Prompt assembly under a token budget.

Priority when space is short (highest first): standing instructions, the
current message, the recent window, retrieved memories, the summary of older
turns. Layout (lost-in-the-middle): one system message with the stable part
first — base prompt, instructions, profile facts, unchanged between turns so
providers can cache the prefix — then the memories relevant to this message
and the summary; then the recent turns; the question last. Whole items only:
nothing is cut mid-message; what does not fit is dropped lowest-score first
(memories) or oldest first (turns).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from memory.errors import UsageError
from memory.models.sections import PromptSections
from memory.models.tokens import MESSAGE_OVERHEAD
from memory.records import Hit, Memory, Message

T = TypeVar("T")

BASE_PROMPT = (
    "You are mem, a helpful personal assistant with a long-term memory of the user. "
    "Use the memories below when they are relevant, say when you are unsure, and never "
    "invent memories. When you use a memory that has a source, cite it in brackets."
)
RECENT_SHARE = 0.5
SUMMARY_SHARE = 0.25


class Part:
    """One part of the prompt. Its token count may be computed on first read: a turn
    whose prompt fits by a free upper bound never loads the tokenizer (0.7 s and 85 MB
    for o200k) unless something shows the counts (--show-prompt, -v)."""

    def __init__(self, name: str, text: str, tokens: int | Callable[[], int], items: int = 0):
        self.name = name
        self.text = text
        self._tokens = tokens
        self.items = items

    @property
    def tokens(self) -> int:
        if not isinstance(self._tokens, int):
            self._tokens = self._tokens()
        return self._tokens

    def __repr__(self) -> str:
        return f"Part({self.name!r}, tokens={self.tokens}, items={self.items})"


@dataclass
class AssembledPrompt:
    messages: list[dict[str, str]]
    parts: list[Part]
    budget: int
    reserve: int
    memories_used: list[Hit] = field(default_factory=list)
    profile_used: list[Memory] = field(default_factory=list)
    recent_used: list[Message] = field(default_factory=list)
    examples_used: list[int] = field(default_factory=list)  # ids of the examples shown
    dropped: dict[str, int] = field(default_factory=dict)
    sections: PromptSections = field(default_factory=PromptSections)

    @property
    def total_tokens(self) -> int:
        return sum(p.tokens for p in self.parts)

    def part(self, name: str) -> Part:
        return next(p for p in self.parts if p.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "reserve": self.reserve,
            "total_tokens": self.total_tokens,
            "parts": [{"name": p.name, "tokens": p.tokens, "items": p.items} for p in self.parts],
            "dropped": self.dropped,
            "messages": self.messages,
        }


def render_hit(hit: Hit) -> str:
    """One memory line with its date and source, so the model can cite it.

    A conversation's message is rendered under its session's heading (see
    :func:`fit_memories`), so its line carries only the speaker and the memory's
    id: ``#id`` is what ``mem show`` opens, it costs two tokens where an imported
    message's own id ("(D1:3)") costs six, and chat messages, which have no
    external id, can be cited too."""
    if hit.kind == "message":
        return f"- {hit.speaker or 'someone'} #{hit.id}: {hit.content}"
    if hit.kind == "document":
        meta = hit.metadata
        lines = f":{meta['line_start']}-{meta['line_end']}" if "line_start" in meta else ""
        return f"- [{meta.get('path', 'document')}{lines}] {hit.content}"
    src = f"{hit.kind} #{hit.id}"
    if hit.message_id is not None:
        src += f", from message #{hit.message_id}"
    return f"- [{hit.created_at[:10]} · {src}] {hit.content}"


def session_headings(hit: Hit) -> tuple[str, str] | None:
    """The two headings a message is grouped under: its conversation, then its day."""
    if hit.kind != "message" or not hit.conversation:
        return None
    return f"### Conversation {hit.conversation}", f"#### {hit.created_at[:10]}"


def heading_cost(
    hit: Hit, opened: set[str], count: Callable[[str], int]
) -> tuple[int, tuple[str, ...]]:
    """Tokens of the headings ``hit`` would open (those not in ``opened`` yet, each with
    its newline), and their keys for ``opened``. A day's key names its conversation too:
    the same day in two conversations is two headings."""
    headings = session_headings(hit)
    if headings is None:
        return 0, ()
    conversation, day = headings
    keys = {conversation: conversation, f"{conversation}\n{day}": day}
    new = tuple(key for key in keys if key not in opened)
    return sum(count(keys[key]) + 1 for key in new), new


def fit_memories(
    hits: Sequence[Hit], count: Callable[[str], int], room: int
) -> tuple[list[Hit], list[str], int]:
    """Whole memories, best first, while they fit in ``room`` tokens, laid out
    as the prompt shows them. Returns (kept, lines, skipped).

    Messages are grouped under their conversation and, within it, under one
    heading per session (day) instead of repeating the date and conversation on
    every line: that leaves room for about a fifth more memories, and a
    session's turns read in their order, oldest session first, which is how a
    person would quote them. Other memories (facts, documents) come first, best
    first. A heading is paid for by the first memory under it that fits; a
    memory that does not fit is skipped and the next one tried, as :func:`_fit`
    does."""
    kept: list[Hit] = []
    spent = 0
    opened: set[str] = set()
    for hit in hits:
        extra, new = heading_cost(hit, opened, count)
        cost = count(render_hit(hit)) + 1 + extra
        if spent + cost > room:
            continue
        kept.append(hit)
        spent += cost
        opened.update(new)
    return kept, layout_memories(kept), len(hits) - len(kept)


def layout_memories(hits: Sequence[Hit]) -> list[str]:
    """The lines of :func:`fit_memories`: loose memories in the given order,
    then each conversation (the one with the oldest session first), its
    sessions in time order, each session's messages in time order."""
    return [item if isinstance(item, str) else render_hit(item) for item in _layout(hits)]


def _layout(hits: Sequence[Hit]) -> list[str | Hit]:
    """Headings and memories in the order :func:`layout_memories` shows them."""
    items: list[str | Hit] = [h for h in hits if session_headings(h) is None]
    grouped: dict[str, dict[str, list[Hit]]] = {}
    for hit in hits:
        headings = session_headings(hit)
        if headings is not None:
            grouped.setdefault(headings[0], {}).setdefault(headings[1], []).append(hit)
    for conversation, days in sorted(grouped.items(), key=lambda kv: (min(kv[1]), kv[0])):
        items.append(conversation)
        for day, group in sorted(days.items()):
            items.append(day)
            ordered: list[Hit] = sorted(group, key=lambda h: (h.created_at, h.id))
            items.extend(ordered)
    return items


def render_fact(memory: Memory) -> str:
    return f"- {memory.content} (#{memory.id}, {memory.created_at[:10]})"


def _fit(
    items: Sequence[T], render: Callable[[T], str], count: Callable[[str], int], room: int
) -> tuple[list[T], list[str], int]:
    """Whole items in order while they fit in ``room`` tokens; an item that does
    not fit is skipped and the next one tried. Returns (kept, lines, skipped)."""
    kept: list[T] = []
    lines: list[str] = []
    spent = 0
    for item in items:
        line = render(item)
        cost = count(line) + 1
        if spent + cost > room:
            continue
        kept.append(item)
        lines.append(line)
        spent += cost
    return kept, lines, len(items) - len(kept)


def _section(title: str, lines: Sequence[str]) -> str:
    return f"## {title}\n" + "\n".join(lines) if lines else ""


def assemble(
    *,
    current: str,
    count: Callable[[str], int],
    budget: int,
    reserve: int,
    instructions: Sequence[Memory] = (),
    profile: Sequence[Memory] = (),
    retrieved: Sequence[Hit] = (),
    summary: str | None = None,
    recent: Sequence[Message] = (),
    base_prompt: str = BASE_PROMPT,
    bound: Callable[[str], int] | None = None,
    examples: Sequence[tuple[str, str]] = (),
    examples_text: str = "",
    example_ids: Sequence[int] = (),
) -> AssembledPrompt:
    """Fit the parts into ``budget - reserve`` tokens; see the module docstring.

    ``bound`` is a free upper bound of ``count`` (e.g. :func:`memory.models.tokens.at_most`).
    When every part fits by it, nothing would be dropped by exact counts either (each
    limit only grows as costs shrink), so the prompt is the same and ``count`` is only
    called if its parts' token counts are read. ``examples_text`` (the section of
    ``examples``, fitted under its own budget: memory.assistant.examples) follows the
    profile facts, and goes when the message and instructions leave no room for it;
    ``example_ids`` (the examples' memory ids) are the prompt's ``examples_used``
    when it is shown, so a turn counts their use as it counts the facts'."""
    shown = (examples, examples_text, example_ids)
    if bound is not None:
        quick = _assemble(
            current, bound, count, budget, reserve, instructions, profile, retrieved,
            summary, recent, base_prompt, shown, all_or_none=True,
        )  # fmt: skip
        if quick is not None:
            return quick
    exact = _assemble(
        current, count, count, budget, reserve, instructions, profile, retrieved,
        summary, recent, base_prompt, shown, all_or_none=False,
    )  # fmt: skip
    assert exact is not None
    return exact


def _assemble(
    current: str,
    count: Callable[[str], int],
    exact: Callable[[str], int],
    budget: int,
    reserve: int,
    instructions: Sequence[Memory],
    profile: Sequence[Memory],
    retrieved: Sequence[Hit],
    summary: str | None,
    recent: Sequence[Message],
    base_prompt: str,
    shown: tuple[Sequence[tuple[str, str]], str, Sequence[int]],
    *,
    all_or_none: bool,
) -> AssembledPrompt | None:
    """:func:`assemble` deciding with ``count``; the parts' counts come from ``exact``
    (when read). ``all_or_none``: None unless every item fits."""
    room = budget - reserve
    instr_text = _section(
        "Standing instructions from the user", [f"- {m.content}" for m in instructions]
    )
    stable_head = "\n\n".join(t for t in (base_prompt, instr_text) if t)
    current_tokens = count(current) + MESSAGE_OVERHEAD
    fixed = count(stable_head) + current_tokens + MESSAGE_OVERHEAD + 2
    if fixed > room:
        if all_or_none:
            return None
        raise UsageError(
            f"The message and standing instructions need {fixed} tokens but the budget leaves "
            f"{room}: shorten the message, or raise --budget."
        )
    dropped: dict[str, int] = {}

    # Profile facts: part of the stable prefix, most important first until full.
    ranked = sorted(profile, key=lambda m: (-m.importance, m.id))
    profile_used, _, skipped = _fit(ranked, render_fact, count, int((room - fixed) * 0.2))
    if skipped:
        dropped["profile"] = skipped
    profile_used.sort(key=lambda m: m.id)  # stable order for prompt caching
    profile_lines = [render_fact(m) for m in profile_used]
    profile_text = _section("What you know about the user", profile_lines)
    fixed += count(profile_text) + 2 if profile_text else 0
    examples, examples_text, example_ids = shown
    if examples_text and fixed + count(examples_text) + 2 <= room:
        fixed += count(examples_text) + 2
    elif examples_text:
        dropped["examples"] = len(examples)
        examples, examples_text, example_ids = (), "", ()
    avail = room - fixed

    # Recent window: newest first, whole messages, up to a share of what is left.
    summary_tokens = count(summary) + 8 if summary else 0
    recent_msgs: list[Message] = []
    recent_tokens = 0
    for msg in reversed(recent):
        cost = count(msg.content) + MESSAGE_OVERHEAD
        if recent_tokens + cost > avail * RECENT_SHARE and recent_msgs:
            break
        if recent_tokens + cost > avail:
            break
        recent_msgs.insert(0, msg)
        recent_tokens += cost
    # Memories: highest score first, leaving room for the summary.
    mem_room = avail - recent_tokens - (min(summary_tokens, int(avail * SUMMARY_SHARE)))
    used, mem_lines, skipped = fit_memories(retrieved, count, mem_room)
    if skipped:
        dropped["memories"] = skipped
    mem_text = _section("Memories that may be relevant to this message", mem_lines)
    left = avail - recent_tokens - (count(mem_text) + 2 if mem_text else 0)
    summary_text = ""
    if summary:
        if summary_tokens <= left:
            summary_text = _section("Summary of the earlier conversation", [summary])
            left -= count(summary_text) + 2
        else:
            dropped["summary"] = 1
    # Second pass: older turns into whatever is still free.
    older = list(recent[: len(recent) - len(recent_msgs)])
    while older:
        cost = count(older[-1].content) + MESSAGE_OVERHEAD
        if cost > left:
            break
        recent_msgs.insert(0, older.pop())
        recent_tokens += cost
        left -= cost
    if older:
        dropped["recent"] = len(older)
    if all_or_none and dropped:
        return None

    system = "\n\n".join(
        t for t in (stable_head, profile_text, examples_text, mem_text, summary_text) if t
    )
    messages = [{"role": "system", "content": system}]
    messages += [
        {"role": "assistant" if m.role == "assistant" else "user", "content": m.content}
        for m in recent_msgs
    ]
    messages.append({"role": "user", "content": current})

    def tokens(text: str, overhead: int) -> Callable[[], int]:
        return lambda: exact(text) + overhead if text else 0

    kept_recent = list(recent_msgs)
    parts = [
        Part("instructions", stable_head, tokens(stable_head, MESSAGE_OVERHEAD), len(instructions)),
        Part(
            "memories",
            "\n\n".join(t for t in (profile_text, mem_text) if t),
            lambda: tokens(profile_text, 2)() + tokens(mem_text, 2)(),
            len(profile_used) + len(used),
        ),
        Part("summary", summary_text, tokens(summary_text, 2), 1 if summary_text else 0),
        Part(
            "recent",
            "\n".join(f"{m.role}: {m.content}" for m in recent_msgs),
            lambda: sum(exact(m.content) + MESSAGE_OVERHEAD for m in kept_recent),
            len(recent_msgs),
        ),
        Part("message", current, lambda: exact(current) + MESSAGE_OVERHEAD, 1),
    ]
    if examples_text:  # the instruction block's examples, counted on their own
        parts.insert(1, Part("examples", examples_text, tokens(examples_text, 2), len(examples)))
    sections = PromptSections(
        instructions=[m.content for m in instructions],
        examples=list(examples),
        facts=list(profile_used),
        memories=[item for item in _layout(used) if not isinstance(item, str)],
        summary=summary if summary_text and summary else "",
        recent=[(m["role"], m["content"]) for m in messages[1:-1]],
        current=current,
    )
    return AssembledPrompt(
        messages=messages,
        parts=parts,
        budget=budget,
        reserve=reserve,
        memories_used=used,
        profile_used=profile_used,
        recent_used=recent_msgs,
        examples_used=list(example_ids) if examples_text else [],
        dropped=dropped,
        sections=sections,
    )
