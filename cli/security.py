"""`mem encrypt` and `mem decrypt`: convert the database file in place."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from memory.config import db_path
from memory.errors import UsageError
from memory.storage.sqlite import crypto
from memory.storage.sqlite.db import SQLITE_HEADER

from . import render
from .app import DbOption, command

KeyringOption = Annotated[
    bool, typer.Option("--keyring", help="Also store the passphrase in the system keyring.")
]


def _target(db: str | None) -> Path:
    path = db_path(db)
    if not path.exists():
        raise UsageError(f"No database at {path}: nothing to convert; check --db or MEM_HOME.")
    return path


def _is_encrypted(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(16)
    return bool(head) and head != SQLITE_HEADER


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


@command("encrypt")
def encrypt(db: DbOption = None, keyring: KeyringOption = False) -> None:
    """Encrypt the database with SQLCipher (passphrase: MEM_PASSPHRASE or asked)."""
    path = _target(db)
    if _is_encrypted(path):
        raise UsageError(f"{path} is already encrypted: nothing to do.")
    passphrase = _new_passphrase()
    if keyring:  # first, so that a missing keyring backend leaves the file as it was
        crypto.store_in_keyring(path, passphrase, unchanged=True)
    try:
        crypto.encrypt_file(path, passphrase)
    except BaseException:
        if keyring:
            crypto.drop_from_keyring(path)
        raise
    render.out().print(
        f"Encrypted {path}. Keep the passphrase: without it the memories cannot be read."
    )
    if not keyring and "MEM_PASSPHRASE" not in os.environ:
        render.status("note: set MEM_PASSPHRASE (or use --keyring) so mem can open it")


@command("decrypt")
def decrypt(db: DbOption = None) -> None:
    """Turn an encrypted database back into a plain SQLite file."""
    path = _target(db)
    if not _is_encrypted(path):
        raise UsageError(f"{path} is not encrypted: nothing to do.")
    passphrase = crypto.passphrase_for(path)
    if passphrase is None:
        if not sys.stdin.isatty():
            raise UsageError("No passphrase: set MEM_PASSPHRASE to the database's passphrase.")
        passphrase = getpass.getpass("Passphrase: ")
    crypto.decrypt_file(path, passphrase)
    render.out().print(f"Decrypted {path}: it is a plain SQLite file again.")
    if os.environ.get("MEM_PASSPHRASE"):
        render.status("note: unset MEM_PASSPHRASE now: mem refuses it for a plain file")
