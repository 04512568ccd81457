"""The Typer application, shared options, and the one place errors are mapped.

Every command is registered through :func:`command`, which turns a named engine
error into ``Error: <message>`` on stderr and the error's exit code. No
traceback reaches the user unless ``MEM_DEBUG=1``.
"""

from __future__ import annotations

import atexit
import functools
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import click
import typer

from memory.errors import MemError, UsageError

from .lazy import LazyGroup, registry

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="mem",
    help="A terminal assistant with a persistent, inspectable memory.",
    no_args_is_help=False,
    add_completion=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=LazyGroup,
)
LazyGroup.app = app

INT64_MAX = 2**63 - 1  # SQLite's largest integer: ids and LIMITs beyond it cannot exist
MAX_RESULTS = 10_000  # search depth: each result costs ranking work


class OutOfRange(click.ClickException):
    """A number option out of its range: ``Error: <message>`` on one line, exit 2
    (click's own BadParameter prints the usage block too)."""

    exit_code = 2


class Bounded(click.ParamType):  # type: ignore[type-arg]  # generic in newer click only
    """A whole number (or a decimal) within ``low..high``; anything else, a
    huge id included, is a one-line error before the command runs.

    ``below``/``above`` override the message (``{value}`` is the number) where
    the engine already words it; ``unit`` words a bound as "at least 1 turn".
    """

    def __init__(
        self,
        low: float,
        high: float,
        *,
        whole: bool = True,
        unit: str = "",
        below: str | None = None,
        above: str | None = None,
    ) -> None:
        self.low, self.high, self.whole, self.unit = low, high, whole, unit
        self.below, self.above = below, above
        self.name = "integer" if whole else "float"

    def _bound(self, word: str, n: float) -> str:
        if self.unit:
            return f"{word} {_num(n)} {self.unit}{'' if n == 1 else 's'}"
        return f"{'a whole number' if self.whole else 'a number'} of {word} {_num(n)}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number: float = value  # a default, already a number
        else:
            try:
                number = int(value) if self.whole else float(value)
            except (TypeError, ValueError, OverflowError):
                what = "a whole number" if self.whole else "a number"
                raise OutOfRange(
                    f"Invalid {_param_name(param)} {value!r}: use {what} from "
                    f"{_num(self.low)} to {_num(self.high)}."
                ) from None
        if number < self.low:
            message = (
                self.below
                or f"Invalid {{name}} {{value}}: use {self._bound('at least', self.low)}."
            )
            raise OutOfRange(message.format(name=_param_name(param), value=number))
        if not number <= self.high:  # also NaN
            message = (
                self.above
                or f"Invalid {{name}} {{value}}: use {self._bound('at most', self.high)}."
            )
            raise OutOfRange(message.format(name=_param_name(param), value=number))
        return number


def _num(n: float) -> str:
    return str(n) if isinstance(n, int) else f"{n:g}"


def _param_name(param: click.Parameter | None) -> str:
    if param is None:
        return "value"
    if isinstance(param, click.Argument):
        return (param.metavar or param.name or "value").rstrip(".").upper()
    longest = max(param.opts, key=len)
    return longest


def _profiles(ctx: click.Context, args: list[str], incomplete: str) -> list[str]:
    """Profile names for shell completion, read from an existing database only."""
    from memory import profile_names

    return [p for p in profile_names(_completion_db(ctx)) if p.startswith(incomplete)]


def _completion_db(ctx: click.Context) -> str | None:
    """``--db`` as given so far (after the command, else before it)."""
    node: click.Context | None = ctx
    while node is not None:
        value = node.params.get("db")
        if value:
            return str(value)
        node = node.parent
    return None


def complete_memory_ids(ctx: click.Context, args: list[str], incomplete: str) -> list[str]:
    from memory import memory_ids

    return [
        i
        for i in memory_ids(_completion_db(ctx), _completion_profile(ctx))
        if i.startswith(incomplete)
    ]


def complete_conversations(ctx: click.Context, args: list[str], incomplete: str) -> list[str]:
    from memory import conversation_ids

    found = conversation_ids(_completion_db(ctx), _completion_profile(ctx))
    return [c for c in found if c.startswith(incomplete)]


def _completion_profile(ctx: click.Context) -> str | None:
    node: click.Context | None = ctx
    while node is not None:
        value = node.params.get("profile")
        if value:
            return str(value)
        node = node.parent
    return os.environ.get("MEM_PROFILE")


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database file, or a postgresql:// URL (default: $MEM_DB, the config's db, "
        "$MEM_HOME/mem.db).",
        metavar="PATH",
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Profile (namespace) to use; default $MEM_PROFILE or 'default'.",
        autocompletion=_profiles,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def debug() -> bool:
    return os.environ.get("MEM_DEBUG", "") not in ("", "0")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line error to stderr and return the Exit to raise."""
    sys.stderr.write(f"Error: {message}\n")
    sys.stderr.flush()
    return typer.Exit(code)


_devnull: Any = None


def _silence_stdout() -> None:
    """Point stdout at /dev/null (what is still buffered must not raise again);
    one handle per process, closed at exit, so none is left for the collector."""
    global _devnull
    try:
        if _devnull is None:
            _devnull = open(os.devnull, "w")  # noqa: SIM115
            atexit.register(_devnull.close)
        sys.stdout = _devnull
    except OSError:
        pass


def guarded(func: F) -> F:
    """The error mapping described in the module docstring, around ``func``."""

    @functools.wraps(func)
    def wrapper(*a: Any, **kw: Any) -> Any:
        try:
            return func(*a, **kw)
        except MemError as err:
            if debug():
                raise
            raise fail(str(err), err.exit_code) from None
        except KeyboardInterrupt:
            if debug():
                raise
            raise fail("Interrupted.", 130) from None
        except BrokenPipeError:
            # `mem list | head`: the reader went away; nothing to report.
            _silence_stdout()
            raise typer.Exit(0) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as err:
            if debug() or _click_exception(err):
                raise
            db_error = _database_error(err, kw.get("db"))
            if db_error is not None:
                raise fail(str(db_error), db_error.exit_code) from None
            raise fail(
                f"unexpected {type(err).__name__}: {err} (run with MEM_DEBUG=1 for details "
                "and report it)",
                70,
            ) from None

    return wrapper  # type: ignore[return-value]


def command(*args: Any, **kwargs: Any) -> Callable[[F], F]:
    """A command on the lazy registry (cli/lazy.py), with :func:`guarded` and the
    root options (:func:`with_root_options`)."""

    def decorator(func: F) -> F:
        registry.command(*args, **kwargs)(with_root_options(guarded(func)))
        return func

    return decorator


# The options `mem` itself takes (cli/main.py). Given before a subcommand they
# mean the same as after it, as `git -C` does; one the subcommand lacks is refused.
GLOBAL_OPTIONS = (
    "model",
    "memory",
    "window",
    "budget",
    "conversation",
    "resume",
    "verbose",
    "db",
    "profile",
)


def root_options(ctx: click.Context) -> dict[str, Any]:
    """The global options given on the command line before the subcommand; one
    that subcommand lacks is refused here, before it parses its own arguments."""
    from click.core import ParameterSource

    given = {
        name: ctx.params[name]
        for name in GLOBAL_OPTIONS
        if name in ctx.params and ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    }
    group = ctx.command
    sub = ctx.invoked_subcommand
    cmd = group.get_command(ctx, sub) if sub and isinstance(group, click.Group) else None
    if cmd is not None:
        own = {p.name for p in cmd.params}
        for name in given:
            if name not in own:
                raise UsageError(_not_for(ctx, _flag(ctx, name), name, sub or ""))
    return given


def with_root_options(func: F) -> F:
    """Fill the subcommand's options from those given before it: refused when the
    subcommand has no such option, or when both places disagree. Outside
    :func:`guarded`, so its error mapping sees the options that apply."""

    @functools.wraps(func)
    def wrapper(*a: Any, **kw: Any) -> Any:
        from click.core import ParameterSource

        ctx = click.get_current_context()
        parent = ctx.parent
        given = parent.obj if parent is not None and isinstance(parent.obj, dict) else {}
        for name, value in given.items():
            flag = _flag(parent, name)
            if name not in kw:
                raise fail(_not_for(parent, flag, name, ctx.info_name or ""), UsageError.exit_code)
            after = kw[name]
            if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE and after != value:
                raise fail(
                    f"{flag} is given twice ({value!r} before `{ctx.info_name}`, {after!r} "
                    "after it): keep one.",
                    UsageError.exit_code,
                )
            kw[name] = value
        return func(*a, **kw)

    return wrapper  # type: ignore[return-value]


def _flag(ctx: click.Context | None, name: str) -> str:
    for param in ctx.command.params if ctx is not None else ():
        if param.name == name:
            return max(param.opts, key=len)
    return f"--{name}"


def _not_for(root: click.Context | None, flag: str, name: str, sub: str) -> str:
    group = root.command if root is not None else None
    takers = []
    if isinstance(group, click.Group) and root is not None:
        for cmd_name in group.list_commands(root):
            cmd = group.get_command(root, cmd_name)
            if cmd is not None and any(p.name == name for p in cmd.params):
                takers.append(f"`mem {cmd_name}`")
    # name the few commands that take it (chat options); not all of them (--db)
    where = f" (it is an option of {' and '.join(takers)})" if 0 < len(takers) <= 3 else ""
    return f"{flag} does not apply to `mem {sub}`{where}: drop it."


def _database_error(err: Exception, db: Any) -> MemError | None:
    """A driver error raised after the database was opened (a damaged page, a
    full disk, a read-only file), as the named error that says the fix."""
    from memory import database_error

    return database_error(err, db if isinstance(db, str) else None)


def _click_exception(err: Exception) -> bool:
    import click

    return isinstance(err, click.ClickException)
