"""Subcommands converted to click commands only when asked for.

Typer turns every registered function into a click command on each start,
evaluating each one's annotations: with 25 commands that is about 40 ms, which
`mem search` paid for the 24 commands it does not run. Commands are registered
on :data:`registry` instead of the app; :class:`LazyGroup` (the app's group
class) knows their names at once and converts one when click asks for it, so a
command costs only itself, and `mem --help` still lists them all.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import click
import typer
from typer.core import TyperGroup
from typer.main import get_command_from_info, get_command_name, get_group_from_info
from typer.models import CommandInfo, TyperInfo

# Where the commands are registered (cli/app.py: command; cli/admin.py: add_typer).
registry = typer.Typer()


def _name(info: CommandInfo | TyperInfo) -> str:
    if isinstance(info, TyperInfo):
        return str(info.name)
    assert info.callback is not None
    return info.name or get_command_name(info.callback.__name__)


class LazyCommands(MutableMapping[str, click.Command]):
    """``group.commands``: every name known, each command built on first use."""

    def __init__(self, eager: dict[str, click.Command], app: typer.Typer) -> None:
        self._app = app
        self._built = dict(eager)
        self._pending: dict[str, CommandInfo | TyperInfo] = {}
        infos: list[CommandInfo | TyperInfo] = [
            *registry.registered_commands,
            *registry.registered_groups,
        ]
        for info in infos:
            self._pending.setdefault(_name(info), info)
        self._order = [*self._built, *(n for n in self._pending if n not in self._built)]

    def _build(self, info: CommandInfo | TyperInfo) -> click.Command:
        app = self._app
        if isinstance(info, TyperInfo):
            return get_group_from_info(
                info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
                suggest_commands=app.suggest_commands,
            )
        return get_command_from_info(
            info,
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
        )

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._built:
            info = self._pending.pop(name)  # KeyError for an unknown name, as a dict
            self._built[name] = self._build(info)
        return self._built[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._pending.pop(name, None)
        if name not in self._order:
            self._order.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self._built and name not in self._pending:
            raise KeyError(name)
        self._built.pop(name, None)
        self._pending.pop(name, None)
        self._order.remove(name)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._built or name in self._pending


class LazyGroup(TyperGroup):
    """The app's click group over :class:`LazyCommands` (see the module docstring)."""

    app: typer.Typer  # set by cli/app.py once the app exists

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(dict(self.commands), self.app)
