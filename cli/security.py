"""`mem encrypt` and `mem decrypt`: convert the database file in place.

The engine (``memory.encrypt_database``/``decrypt_database``) checks the file
and converts it; this module only asks for the passphrase, when asked to."""

from __future__ import annotations

import getpass
import os
import sys
from typing import Annotated

import typer

import memory
from memory.errors import UsageError

from . import render
from .app import DbOption, command

KeyringOption = Annotated[
    bool, typer.Option("--keyring", help="Also store the passphrase in the system keyring.")
]


def _new_passphrase() -> str:
    env = os.environ.get("MEM_PASSPHRASE")
    if env:
        return env
    if not sys.stdin.isatty():
        raise UsageError("No passphrase: set MEM_PASSPHRASE, or run `mem encrypt` in a terminal.")
    first = getpass.getpass("New passphrase: ")
    if first != getpass.getpass("Repeat it: "):
        raise UsageError("The passphrases differ: run `mem encrypt` again.")
    return first


def _passphrase() -> str:
    if not sys.stdin.isatty():
        raise UsageError("No passphrase: set MEM_PASSPHRASE to the database's passphrase.")
    return getpass.getpass("Passphrase: ")


@command("encrypt")
def encrypt(db: DbOption = None, keyring: KeyringOption = False) -> None:
    """Encrypt the database with SQLCipher (passphrase: MEM_PASSPHRASE or asked)."""
    path = memory.encrypt_database(db, _new_passphrase, keyring=keyring)
    render.out().print(
        f"Encrypted {path}. Keep the passphrase: without it the memories cannot be read."
    )
    if not keyring and "MEM_PASSPHRASE" not in os.environ:
        render.status("note: set MEM_PASSPHRASE (or use --keyring) so mem can open it")


@command("decrypt")
def decrypt(db: DbOption = None) -> None:
    """Turn an encrypted database back into a plain SQLite file."""
    path = memory.decrypt_database(db, _passphrase)
    render.out().print(f"Decrypted {path}: it is a plain SQLite file again.")
    if os.environ.get("MEM_PASSPHRASE"):
        render.status("note: unset MEM_PASSPHRASE now: mem refuses it for a plain file")
