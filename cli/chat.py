"""Placeholder until the assistant lands."""


def start_repl() -> None:
    raise SystemExit("chat: not yet")
