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
from pathlib import Path
from typing import Any

from memory.assistant.turn import Assistant, Prepared
from memory.errors import MemError, UsageError
from memory.formation.consolidation import Change, undo_last
from memory.lifecycle.forgetting import forget
from memory.privacy import history
from memory.retrieval.search import find
from memory.storage.sqlite.db import is_driver_error, translate
from memory.store import MemoryStore

from . import render

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
    "/help": ("", "this list"),
    "/exit": ("", "leave (Ctrl-D works too)"),
}


def gated_history(path: Path, policy: str) -> Any:
    """A prompt-toolkit history over memory.privacy.history: what is typed passes the
    secret gate before it is kept, in the file and in the session alike."""
    from prompt_toolkit.history import History

    class GatedHistory(History):
        def load_history_strings(self) -> list[str]:
            return list(reversed(history.load(path)))

        def append_string(self, string: str) -> None:
            entry = history.gate(string, policy)
            if entry is not None:
                self._loaded_strings.insert(0, entry)
                self.store_string(entry)

        def store_string(self, string: str) -> None:
            try:
                history.append(path, string, policy)
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
        self.say("bye")

    def _history(self) -> Any:
        """Gated, private and per profile (memory.privacy.history); next to an encrypted
        database it stays in memory, and an older plaintext file is removed."""
        from prompt_toolkit.history import InMemoryHistory

        path = history.path_for(self.store.path, self.store.profile)
        if history.is_encrypted(self.store.conn):
            if history.remove(path):
                self.say(
                    "note: removed the plaintext input history: an encrypted database keeps none"
                )
            return InMemoryHistory()
        return gated_history(path, self.store.secrets)

    def preload(self) -> None:
        """Heavy imports (the model's SDK, or the offline model's load) and the
        embedder's table start now, in the background, while the user types: the prompt
        never waits for them, and the first reply waits only for what is left."""
        from memory.models.llm import preload_in_background

        settings = self.assistant.settings
        preload_in_background(settings.model, settings.api_base)
        embedder = self.store.embedder

        def warm() -> None:
            try:
                embedder.embed(["warm up"])
            except Exception:  # a provider embedder's error is reported on first use
                pass

        if not embedder.name.startswith("litellm:"):  # offline ones only: no request
            threading.Thread(target=warm, name="mem-embedder-preload", daemon=True).start()

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
            if not is_driver_error(err):
                raise
            self.error(translate(err, self.store.path))
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
        store, settings = self.store, self.assistant.settings
        conversation = self.assistant.conversation
        model = self.assistant._model

        def work() -> None:
            try:
                with MemoryStore.open(
                    store.path,
                    embedder=store.embedder.name,
                    profile=store.profile,
                    secrets=store.secrets,  # the config's policy, not the default
                ) as own:
                    worker = Assistant(own, settings, warn=self.assistant._warn)
                    worker.conversation = conversation
                    worker._model = model
                    self.receipts(worker.after_reply(prepared))
            except MemError as err:
                print(f"note: memory update failed: {err}")

        self._worker = threading.Thread(target=work, name="mem-formation", daemon=True)
        self._worker.start()

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
            self.say(f"  {name:<10} {args:<7} {what}")
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
        from .commands import forget_receipt

        report = forget(self.store, ids)
        self.say(f"- {forget_receipt(report)}")
        for note in report.notes:
            self.say(f"note: {note}")
        if report.scrub_pending:
            self.say(
                "note: another process is reading the database; the next mem command "
                "finishes the scrub"
            )
        reload = getattr(self.history, "reload", None)
        if reload is not None:
            reload()

    def cmd_memories(self, arg: str) -> None:
        kinds = [arg] if arg else ["instruction", "fact"]
        mems = [m for k in kinds for m in self.store.list_memories(kind=k)]
        if not mems:
            self.say("(nothing remembered yet)")
        for m in mems:
            self.say(f"  #{m.id} {m.kind}: {m.content}")

    def cmd_search(self, arg: str) -> None:
        hits = find(self.store, self._need(arg, "Usage: /search QUERY"), limit=8)
        if not hits:
            self.say("(no matches)")
        for h in hits:
            who = f"{h.speaker}: " if h.kind == "message" and h.speaker else ""
            self.say(f"  #{h.id} {h.kind} {h.created_at[:10]} {who}{render.short(h.content, 90)}")

    def cmd_undo(self, arg: str) -> None:
        lines = undo_last(self.store)
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
            from memory.models.llm import preload_in_background

            preload_in_background(arg, self.assistant.settings.api_base)
        self.say(f"model: {self.assistant.settings.model or '(none: set one with /model NAME)'}")
