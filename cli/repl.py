"""The chat REPL: prompt-toolkit input, Rich output, slash commands.

Ctrl-C while a reply streams cancels it (what was streamed is kept and
logged); Ctrl-C at the prompt clears the line; Ctrl-D exits. Memory formation
runs in a background thread after the reply is shown, on its own database
connection, and prints its receipts above the prompt when it is done.
"""

from __future__ import annotations

import os
import shlex
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from memory import InputHistory, Memory, database_error
from memory.errors import MemError, UsageError

from . import render

if TYPE_CHECKING:
    from memory import Assistant, Change, Prepared

COMMANDS: dict[str, tuple[str, str]] = {
    "/remember": ("TEXT", "store a fact about you"),
    "/instruct": ("TEXT", "store a standing instruction, e.g. 'answer in bullet points'"),
    "/forget": ("ID…", "forget memories by id (see /memories)"),
    "/memories": ("[KIND]", "list what is remembered (facts and instructions by default)"),
    "/search": ("QUERY", "search memories and past messages"),
    "/undo": ("", "revert the last memory change"),
    "/new": ("", "start a new conversation"),
    "/budget": ("[TEXT]", "show the prompt that TEXT would get, with tokens per part"),
    "/model": ("[NAME]", "show or switch the model"),
    "/example": ("IN => OUT", "store an in-context example: a message like IN gets it"),
    "/keep": ("[TASK]", "keep the last exchange (your message, the reply) as an example"),
    "/help": ("", "this list"),
    "/exit": ("", "leave (Ctrl-D works too)"),
}


def gated_history(inputs: InputHistory) -> Any:
    """A prompt-toolkit history over the engine's InputHistory: what is typed passes
    the secret gate before it is kept, in the file and in the session alike."""
    from prompt_toolkit.history import History

    class GatedHistory(History):
        def load_history_strings(self) -> list[str]:
            return list(reversed(inputs.load()))

        def append_string(self, string: str) -> None:
            entry = inputs.gate(string)
            if entry is not None:
                self._loaded_strings.insert(0, entry)
                self.store_string(entry)

        def store_string(self, string: str) -> None:
            try:
                inputs.append(string)
            except OSError as err:  # a full disk must not end the session
                print(f"note: input history not saved ({err.strerror})")

        def reload(self) -> None:
            """After a forget scrubbed the file."""
            self._loaded_strings = self.load_history_strings()

    return GatedHistory()


def plain_output() -> bool:
    return bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()


class Repl:
    def __init__(self, assistant: Assistant, *, verbose: bool = False) -> None:
        self.assistant = assistant
        self.store = assistant.store
        self.memory = Memory(assistant.store, assistant.settings)  # the verbs of /commands
        self.verbose = verbose
        self._worker: threading.Thread | None = None
        self._last_text: str | None = None
        self.history: Any = None

    # ------------------------------------------------------------------ loop
    def run(self) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.key_binding import KeyBindings
        from prompt_toolkit.patch_stdout import patch_stdout

        bindings = KeyBindings()

        @bindings.add("escape", "enter")
        def _newline(event: Any) -> None:
            event.current_buffer.insert_text("\n")

        self.history = self._history()
        session: PromptSession[str] = PromptSession(
            history=self.history, key_bindings=bindings, multiline=False
        )
        model = self.assistant.settings.model or "no model (memory commands only)"
        self.say(
            f"mem · {model} · conversation {self.assistant.conversation} · "
            "/help for commands, Ctrl-D to leave"
        )
        self.preload()
        while True:
            try:
                with patch_stdout(raw=True):
                    text = session.prompt("you> ")
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            self.wait_for_memory()
            text = text.strip()
            if not text:
                continue
            if text.startswith("/"):
                if self.slash(text) == "exit":
                    break
                continue
            self.chat(text)
        self.wait_for_memory()
        try:  # the conversation is over: its sessions become episodes
            self.assistant.end_conversation()
        except MemError as err:
            self.say(f"note: could not write this conversation's episodes ({err})")
        self.say("bye")

    def _history(self) -> Any:
        """Gated, private and per profile (memory.InputHistory); next to an encrypted
        database it stays in memory, and an older plaintext file is removed."""
        from prompt_toolkit.history import InMemoryHistory

        inputs = InputHistory.for_store(self.store)
        if inputs.kept:
            return gated_history(inputs)
        if inputs.removed_plaintext:
            self.say("note: removed the plaintext input history: an encrypted database keeps none")
        return InMemoryHistory()

    def preload(self) -> None:
        """Heavy imports (the model's SDK, or the offline model's load) and the
        embedder's table start now, in the background, while the user types: the prompt
        never waits for them, and the first reply waits only for what is left."""
        self.assistant.preload()

    def say(self, text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def error(self, err: MemError | str) -> None:
        sys.stdout.write(f"Error: {err}\n")
        sys.stdout.flush()

    # ------------------------------------------------------------------ turns
    def chat(self, text: str) -> None:
        """One turn; an error is reported and the REPL goes on."""
        self._last_text = text
        try:
            prepared = self.assistant.prepare(text)
            self._stream(prepared, [])
        except MemError as err:
            self.error(err)
            return
        except Exception as err:
            named = database_error(err, self.store.target)
            if named is None:
                raise
            self.error(named)
            return
        self._after(prepared)

    def _stream(self, prepared: Prepared, sink: list[str]) -> None:
        replies = self.assistant.stream_reply(prepared, sink)
        live: Any = None
        if not plain_output():
            from rich.live import Live
            from rich.markdown import Markdown

            live = Live(Markdown(""), console=render.out(), refresh_per_second=12)
            live.start()
        try:
            for chunk in replies:
                if live is not None:
                    from rich.markdown import Markdown

                    live.update(Markdown("".join(sink)))
                else:
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
        except KeyboardInterrupt:
            replies.close()
            if live is not None:
                live.stop()
                live = None
            self.say("\n[cancelled: the partial reply is kept]")
            return
        finally:
            replies.close()
            if live is not None:
                live.stop()
        if live is None:
            self.say("")

    def _after(self, prepared: Prepared) -> None:
        """Formation off the main thread, on a connection of its own."""
        self._worker = self.assistant.after_reply_in_background(
            prepared, self.receipts, lambda err: print(f"note: memory update failed: {err}")
        )

    def receipts(self, changes: list[Change]) -> None:
        for change in changes:
            if change.action != "ignore" or self.verbose:
                print(change.receipt())

    def wait_for_memory(self) -> None:
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    # -------------------------------------------------------------- commands
    def slash(self, text: str) -> str | None:
        name, _, arg = text.partition(" ")
        arg = arg.strip()
        handler: Callable[[str], str | None] | None = getattr(
            self, "cmd_" + name.lstrip("/").replace("-", "_"), None
        )
        if name not in COMMANDS and name != "/quit" or handler is None:
            self.error(f"Unknown command {name}: type /help for the list.")
            return None
        try:
            return handler(arg)
        except MemError as err:
            self.error(err)
            return None

    def cmd_help(self, arg: str) -> None:
        for name, (args, what) in COMMANDS.items():
            self.say(f"  {name:<10} {args:<9} {what}")
        self.say("  Esc Enter inserts a new line; Ctrl-C cancels a reply; Ctrl-D leaves.")

    def cmd_exit(self, arg: str) -> str:
        return "exit"

    cmd_quit = cmd_exit

    def _need(self, arg: str, what: str) -> str:
        if not arg:
            raise UsageError(f"{what}: see /help.")
        return arg

    def cmd_remember(self, arg: str) -> None:
        change = self.assistant.remember(self._need(arg, "Usage: /remember TEXT"))
        self.say(change.receipt())

    def cmd_instruct(self, arg: str) -> None:
        change = self.assistant.remember(
            self._need(arg, "Usage: /instruct TEXT"), kind="instruction"
        )
        self.say(change.receipt())

    def cmd_forget(self, arg: str) -> None:
        try:
            ids = [int(x.lstrip("#")) for x in shlex.split(self._need(arg, "Usage: /forget ID…"))]
        except ValueError:
            raise UsageError("Usage: /forget ID…, with numeric ids from /memories.") from None
        from .forget import forget_receipt

        report = self.memory.forget(ids)
        self.say(f"- {forget_receipt(report)}")
        for note in report.notes:
            self.say(f"note: {note}")
        if report.scrub_pending:
            self.say(
                f"note: {report.scrub_hint}"
                if report.scrub_hint
                else "note: another process is reading the database; the next mem command "
                "finishes the scrub"
            )
        reload = getattr(self.history, "reload", None)
        if reload is not None:
            reload()

    def cmd_memories(self, arg: str) -> None:
        kinds = [arg] if arg else ["instruction", "fact"]
        mems = [m for k in kinds for m in self.memory.list(kind=k)]
        if not mems:
            self.say("(nothing remembered yet)")
        for m in mems:
            self.say(f"  #{m.id} {m.kind}: {m.content}")

    def cmd_search(self, arg: str) -> None:
        hits = self.memory.search(self._need(arg, "Usage: /search QUERY"), limit=8)
        if not hits:
            self.say("(no matches)")
        for h in hits:
            who = f"{h.speaker}: " if h.kind == "message" and h.speaker else ""
            self.say(f"  #{h.id} {h.kind} {h.created_at[:10]} {who}{render.short(h.content, 90)}")

    def cmd_undo(self, arg: str) -> None:
        lines = self.memory.undo()
        for line in lines or ["(nothing to undo)"]:
            self.say(line)

    def cmd_new(self, arg: str) -> None:
        self.say(f"new conversation {self.assistant.new_conversation()}")

    def cmd_budget(self, arg: str) -> None:
        text = arg or self._last_text or "(your next message)"
        render.print_prompt(self.assistant, text, as_json=False)

    def cmd_model(self, arg: str) -> None:
        if arg:
            self.assistant.set_model(arg)
            self.assistant.preload()
        self.say(f"model: {self.assistant.settings.model or '(none: set one with /model NAME)'}")

    def cmd_example(self, arg: str) -> None:
        given, arrow, wanted = arg.partition("=>")
        if not arrow or not given.strip() or not wanted.strip():
            raise UsageError("Usage: /example INPUT => OUTPUT, e.g. /example 2+2 => 4.")
        record = self.memory.add_example(given, wanted, conversation=self.assistant.conversation)
        self.say(f"+ example #{record.id}: {render.short(record.content, 70)}")

    def cmd_keep(self, arg: str) -> None:
        conversation = self.assistant.conversation
        last = self.store.messages(conversation, limit=2) if conversation else []
        if len(last) < 2 or (last[0].role, last[1].role) != ("user", "assistant"):
            raise UsageError("Nothing to keep yet: /keep saves your last message and its reply.")
        asked, said = last
        record = self.memory.add_example(
            asked.content,
            said.content,
            task=arg or None,
            source_messages=(asked.id, said.id),
            conversation=conversation,
        )
        self.say(f"+ example #{record.id}: {render.short(record.content, 70)}")
