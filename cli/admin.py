"""`mem admin`: set up a shared PostgreSQL database (memory.storage.postgres.admin).

Run as the database owner. The server URL comes from ``--url`` or
``MEM_POSTGRES_URL``; it is never printed with its password.
"""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer

from memory.errors import UsageError

from . import render
from .app import guarded
from .lazy import registry

admin_app = typer.Typer(
    help="Set up a shared PostgreSQL database: schema, member roles, shared namespaces.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
registry.add_typer(admin_app, name="admin")

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="The owner's PostgreSQL URL (default: $MEM_POSTGRES_URL)."),
]


def _url(url: str | None) -> str:
    found = url or os.environ.get("MEM_POSTGRES_URL", "")
    if not found:
        raise UsageError("No PostgreSQL URL: give --url or set MEM_POSTGRES_URL.")
    return found


def _init(
    url: UrlOption = None,
    embedder: Annotated[
        str | None, typer.Option("--embedder", help="Embedder of the vectors (default: mem's).")
    ] = None,
) -> None:
    """Create or upgrade the schema (tables, row-level security, vector index)."""
    from memory import get_embedder, server_init

    model = get_embedder(embedder)
    version = server_init(_url(url), embedder=model.name, dim=model.dim)
    render.out().print(f"Schema version {version}, vectors of {model.name} ({model.dim} numbers).")


def _add_member(
    profile: Annotated[str, typer.Argument(help="The profile; its role has the same name.")],
    url: UrlOption = None,
    password: Annotated[
        bool, typer.Option("--password", help="Ask for a login password for the role.")
    ] = False,
) -> None:
    """Add a member: a login role confined to its own profile's rows."""
    from memory import server_add_member

    secret = getpass.getpass(f"Password for {profile}: ") if password else None
    server_add_member(_url(url), profile, password=secret)
    render.out().print(f"Role {profile} added: it reads and writes profile {profile} only.")


def _grant(
    namespace: Annotated[str, typer.Argument(help="The shared namespace (system, a team's).")],
    profile: Annotated[str, typer.Argument(help="The member who may read it.")],
    url: UrlOption = None,
    revoke: Annotated[bool, typer.Option("--revoke", help="Take the grant back.")] = False,
) -> None:
    """Let a member read a shared namespace (or, --revoke, no longer)."""
    from memory import server_grant

    server_grant(_url(url), namespace, profile, revoke=revoke)
    render.out().print(f"{profile} {'no longer reads' if revoke else 'reads'} {namespace}.")


def _scrub(url: UrlOption = None) -> None:
    """VACUUM what members' forgets left behind (only the owner may)."""
    from memory import server_scrub

    server_scrub(_url(url))
    render.out().print("Vacuumed; the keyword index was rebuilt.")


admin_app.command("init")(guarded(_init))
admin_app.command("add-member")(guarded(_add_member))
admin_app.command("grant")(guarded(_grant))
admin_app.command("scrub")(guarded(_scrub))
