"""Administering a shared PostgreSQL database: what ``mem admin`` calls.

Run as the database owner (the role that created the tables; a superuser
works). ``init`` creates or upgrades the schema for an embedder; each member
is a login role named after its profile, in the group ``mem_member``, which
row-level security confines to its own rows (:mod:`.rls`); ``grant`` lets a
member read a shared namespace (``system``, a team's); ``scrub`` vacuums what
members' forgets left behind (only the owner may VACUUM).
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from ...errors import UsageError
from . import lineage, migrations
from .backend import PostgresBackend
from .connection import PermissionDeniedError, translate

_ROLE = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")
_RESERVED = {"public", "system", "mem_member", "postgres", "none"}


def _role_name(profile: str) -> str:
    if not _ROLE.match(profile) or profile in _RESERVED or profile.startswith("pg_"):
        raise UsageError(
            f"{profile!r} cannot be a member role: use lowercase letters, digits, _ and -, "
            "not a reserved name."
        )
    return profile


def _owner(url: str) -> PostgresBackend:
    backend = PostgresBackend.open(url)
    if not backend.trusted:
        backend.close()
        raise PermissionDeniedError(
            f"{backend.where}: `mem admin` needs the database owner's role, not a member's."
        )
    return backend


def init(url: str, *, embedder: str, dim: int) -> int:
    """Create (or upgrade) the schema; returns its version."""
    PostgresBackend.open(url, embedder=embedder, dim=dim).close()
    backend = _owner(url)
    try:
        return migrations.version(backend.conn)
    finally:
        backend.close()


def add_member(url: str, profile: str, *, password: str | None = None) -> None:
    """A login role for ``profile`` (kept if it exists), in ``mem_member``."""
    role = sql.Identifier(_role_name(profile))
    backend = _owner(url)
    try:
        with backend.conn.transaction():
            found = backend.conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", [profile]
            ).fetchone()
            if found is None:
                backend.conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
            if password is not None:
                backend.conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(password))
                )
            backend.conn.execute(sql.SQL("GRANT mem_member TO {}").format(role))
    except psycopg.Error as err:
        raise translate(err, backend.where) from None
    finally:
        backend.close()


def grant(url: str, namespace: str, profile: str, *, revoke: bool = False) -> None:
    """Let ``profile`` read ``namespace`` (``revoke``: no longer)."""
    if not namespace or namespace == profile:
        raise UsageError("Grant a shared namespace other than the member's own profile.")
    backend = _owner(url)
    try:
        if revoke:
            backend.x(
                "DELETE FROM mem_grants WHERE namespace = %s AND member = %s", [namespace, profile]
            )
        else:
            backend.x(
                "INSERT INTO mem_grants (namespace, member) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                [namespace, _role_name(profile)],
            )
    finally:
        backend.close()


def scrub(url: str) -> bool:
    """VACUUM and rebuild the keyword index: what members' forgets left."""
    backend = _owner(url)
    try:
        return lineage.vacuum(backend)
    finally:
        backend.close()
