"""Connecting to PostgreSQL without ever showing a password.

Every error this package raises about a server names it through
:func:`redact`, so a URL with ``user:secret@`` (or ``password=secret``) never
reaches a message, a log line or a traceback it builds.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

from ...errors import DatabaseBusyError, DatabaseError, MemError, UsageError

_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/?#]*):[^@/?#]*@", re.I)
_KEYWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)", re.I)


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (URL and key=value forms)."""
    out = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)
    return _KEYWORD.sub(lambda m: f"{m['key']}***", out)


class PermissionDeniedError(DatabaseError):
    """The server's role may not do this (row-level security, a missing grant)."""


def translate(err: Exception, url: str) -> MemError:
    """A driver error as a one-line :class:`MemError` naming the server
    without its password (the driver's own text may quote the URL too)."""
    where = redact(url)
    text = redact(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
    if isinstance(err, psycopg.errors.InsufficientPrivilege):
        return PermissionDeniedError(
            f"PostgreSQL at {where} refused: {text}. Ask the admin for a grant (`mem admin`)."
        )
    if isinstance(err, psycopg.errors.LockNotAvailable | psycopg.errors.DeadlockDetected):
        return DatabaseBusyError(
            f"PostgreSQL at {where} is busy: {text}. Try again when the other session is done."
        )
    if isinstance(err, psycopg.OperationalError) and getattr(err, "sqlstate", None) is None:
        return DatabaseError(
            f"Cannot reach PostgreSQL at {where}: {text}. Check the URL and that the server runs."
        )
    return DatabaseError(f"PostgreSQL at {where}: {text}.")


def connect(url: str, **options: Any) -> psycopg.Connection[Any]:
    """An autocommit connection (transactions are opened explicitly, nested
    blocks become savepoints); errors come back redacted."""
    try:
        return psycopg.connect(url, autocommit=True, **options)
    except psycopg.ProgrammingError:
        # libpq quotes the malformed part, which may be the password itself.
        raise UsageError(
            "Invalid PostgreSQL URL (not shown: it may hold a password): "
            "use postgresql://user@host:port/dbname."
        ) from None
    except psycopg.Error as err:
        raise translate(err, url) from None
