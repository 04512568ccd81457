"""`mem ask` and `mem chat`: the assistant's two front doors.

`mem ask` is for scripts: the reply alone on stdout, status on stderr, stdin
read when piped. `mem chat` (and bare `mem`) is the REPL in cli/repl.py.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from memory import resolve_chat_model
from memory.config import BUDGET_RANGE, WINDOW_RANGE, Config, load_config
from memory.errors import InvalidInputError, UsageError

from . import render
from .app import Bounded, DbOption, JsonOption, ProfileOption, command, complete_conversations
from .commands import open_memory
from .render import print_prompt

if TYPE_CHECKING:  # the assistant's modules load only when a chat command runs
    from memory import Assistant, Memory, PruneReport, Settings

MAX_INPUT_BYTES = 1_000_000

ModelOption = Annotated[
    str | None,
    typer.Option("--model", "-m", help="litellm model name, e.g. openai/gpt-4o-mini."),
]
MemoryOption = Annotated[
    str | None,
    typer.Option("--memory", help="buffer, window, summary or summary-buffer (default)."),
]
WindowOption = Annotated[
    int | None,
    typer.Option(
        "--window",
        help="Turns kept verbatim (window, summary-buffer).",
        click_type=Bounded(*WINDOW_RANGE, unit="turn"),
    ),
]
BudgetOption = Annotated[
    int | None,
    typer.Option(
        "--budget",
        help="Prompt token budget (default: the model's).",
        click_type=Bounded(*BUDGET_RANGE, unit="token"),
    ),
]
ConversationOption = Annotated[
    str | None,
    typer.Option(
        "--conversation",
        help="Continue this conversation id.",
        autocompletion=complete_conversations,
    ),
]
ContinueOption = Annotated[
    bool, typer.Option("--continue", "-c", help="Continue the last conversation.")
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Report memory work on stderr.")
]


_announced: set[str] = set()


def chat_model(option: str | None, cfg: Config) -> str | None:
    """The configured model, else the embedded local one when it fits (said once per
    process on stderr, with how to pick a stronger one), else None."""
    name, note = resolve_chat_model(option, cfg)
    if note and name not in _announced:
        _announced.add(name or "")
        render.status(f"note: {note}")
    return name


def settings_from(
    cfg: Config,
    model: str | None,
    memory: str | None,
    window: int | None,
    budget: int | None,
) -> Settings:
    from dataclasses import replace

    return replace(  # one settings type: the config, with the command line's options
        cfg,
        model=chat_model(model, cfg),
        memory=memory or cfg.memory,
        window=window if window is not None else cfg.window,
        budget=budget if budget is not None else cfg.budget,
    )


def read_stdin() -> str:
    """Piped input as text: strict UTF-8, no NUL bytes, bounded size."""
    data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise InvalidInputError(
            f"stdin is larger than {MAX_INPUT_BYTES // 1_000_000} MB: send a shorter text, or "
            "save it to a file and index it with `mem add FILE`."
        )
    if b"\x00" in data:
        raise InvalidInputError("stdin contains NUL bytes (binary data?): pipe text instead.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError("stdin is not valid UTF-8: convert the text to UTF-8.") from None


def retention_note(report: PruneReport | None) -> None:
    """What the retention run at the start of a chat deleted (`mem prune` does it by hand)."""
    if report is not None and report.total:
        parts = ", ".join(f"{n} {kind}" for kind, n in report.counts.items())
        render.status(f"note: retention deleted {parts}")


def make_assistant(mem: Memory, settings: Settings, verbose: bool) -> Assistant:
    warned: set[str] = set()

    def warn(message: str) -> None:
        key = message.split("(")[0]
        if verbose or key not in warned:
            render.status(f"note: {message}")
        warned.add(key)

    return mem.assistant(settings=settings, warn=warn)


@command("ask")
def ask(
    text: Annotated[
        str | None, typer.Argument(help="Your message (stdin is read when piped).")
    ] = None,
    model: ModelOption = None,
    memory: MemoryOption = None,
    window: WindowOption = None,
    budget: BudgetOption = None,
    conversation: ConversationOption = None,
    resume: ContinueOption = False,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Print the reply at once.")
    ] = False,
    show_prompt: Annotated[
        bool, typer.Option("--show-prompt", help="Print the assembled prompt; call no model.")
    ] = False,
    verbose: VerboseOption = False,
    db: DbOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """One turn: the reply alone on stdout, status on stderr."""
    parts = [text] if text else []
    if not sys.stdin.isatty():
        piped = read_stdin()
        if piped.strip():
            parts.append(piped)
    message = "\n\n".join(p.strip() for p in parts if p.strip())
    if not message:
        raise UsageError("Nothing to ask: give a message, or pipe text into `mem ask`.")
    settings = settings_from(load_config(), model, memory, window, budget)
    with open_memory(db, profile) as mem:
        assistant = make_assistant(mem, settings, verbose)
        if show_prompt:
            if conversation or resume:
                assistant.open_conversation(conversation, resume=resume)
            print_prompt(assistant, message, as_json)
            return
        retention_note(assistant.start(conversation, resume=resume, need_model=True))
        if verbose:
            render.status(f"model {assistant.model.describe()}")
        stream = not (no_stream or as_json)
        result = assistant.turn(
            message,
            on_chunk=write if stream else None,
            on_reply=None if as_json else lambda reply: end_reply(reply, stream),
        )
    if as_json:
        render.emit_json(result.to_dict())
        return
    for change in result.memory_changes:
        if change.action != "ignore" or verbose:
            render.status(change.receipt())
    if verbose:
        render.status(
            f"conversation {result.conversation}; "
            f"{len(result.prompt.memories_used)} memories used; "
            f"prompt {result.prompt.total_tokens} tokens"
        )


def write(chunk: str) -> None:
    sys.stdout.write(chunk)
    sys.stdout.flush()


def end_reply(reply: str, streamed: bool) -> None:
    """The reply, when it was not streamed, and the newline that ends it."""
    if not streamed:
        sys.stdout.write(reply)
    if not reply.endswith("\n"):
        sys.stdout.write("\n")
    sys.stdout.flush()


@command("chat")
def chat(
    model: ModelOption = None,
    memory: MemoryOption = None,
    window: WindowOption = None,
    budget: BudgetOption = None,
    conversation: ConversationOption = None,
    resume: ContinueOption = False,
    verbose: VerboseOption = False,
    db: DbOption = None,
    profile: ProfileOption = None,
) -> None:
    """Chat in the terminal; /help lists the slash commands."""
    start_repl(
        model=model,
        memory=memory,
        window=window,
        budget=budget,
        conversation=conversation,
        resume=resume,
        verbose=verbose,
        db=db,
        profile=profile,
    )


def start_repl(
    *,
    model: str | None = None,
    memory: str | None = None,
    window: int | None = None,
    budget: int | None = None,
    conversation: str | None = None,
    resume: bool = False,
    verbose: bool = False,
    db: str | None = None,
    profile: str | None = None,
) -> None:
    from .repl import Repl

    if not sys.stdin.isatty():
        raise UsageError("The chat needs a terminal: for piped input use `echo … | mem ask`.")

    settings = settings_from(load_config(), model, memory, window, budget)
    with open_memory(db, profile) as mem:
        assistant = make_assistant(mem, settings, verbose)
        # the REPL preloads once its prompt shows: the prompt never waits for it;
        # tending runs in the background, at most once a day
        retention_note(assistant.start(conversation, resume=resume, preload=False, tend=True))
        Repl(assistant, verbose=verbose).run()
