"""The Typer application, shared options, and the one place errors are mapped.

Every command is registered through :func:`command`, which turns a named engine
error into ``Error: <message>`` on stderr and the error's exit code. No
traceback reaches the user unless ``MEM_DEBUG=1``.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from memory.errors import MemError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="mem",
    help="A terminal assistant with a persistent, inspectable memory.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database file (default: $MEM_HOME/mem.db).", metavar="PATH"),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile", help="Profile (namespace) to use; default $MEM_PROFILE or 'default'."
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
            try:
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115
            except OSError:
                pass
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
    """``app.command`` plus :func:`guarded`."""

    def decorator(func: F) -> F:
        app.command(*args, **kwargs)(guarded(func))
        return func

    return decorator


def _database_error(err: Exception, db: Any) -> MemError | None:
    """A driver error raised after the database was opened (a damaged page, a
    full disk, a read-only file), as the named error that says the fix."""
    from memory.db import is_driver_error, translate

    if not is_driver_error(err):
        return None
    from memory.config import db_path

    return translate(err, db_path(db if isinstance(db, str) else None))


def _click_exception(err: Exception) -> bool:
    import click

    return isinstance(err, click.ClickException)
