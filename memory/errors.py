"""Named exceptions of the memory engine.

Every error a person can cause or fix is one of these. Each carries a one-line
message that says what went wrong *and how to fix it*, plus the exit code the CLI
uses. The CLI maps them once (``cli/main.py``); the engine never prints.
"""

from __future__ import annotations


class MemError(Exception):
    """Base class: ``str(err)`` is the one-line message shown to the user."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(MemError):
    """Bad arguments or input: the user can fix the command line."""

    exit_code = 2


class NotFoundError(MemError):
    """A memory, conversation or message id that does not exist."""

    exit_code = 3


class InvalidInputError(UsageError):
    """Input data (stdin, an import file) that cannot be used."""


class ImportFormatError(InvalidInputError):
    """A malformed line in an import file; the message names the line number."""


class DatabaseError(MemError):
    """The database file cannot be opened or used."""

    exit_code = 4


class CorruptDatabaseError(DatabaseError):
    """The file is not a SQLite database, or it is damaged."""


class SchemaTooNewError(DatabaseError):
    """The database was written by a newer version of mem."""


class EmbedderMismatchError(DatabaseError):
    """The configured embedder differs from the one the vectors were built with."""


class IndexIncompleteError(DatabaseError):
    """Some memories have no vector (an interrupted reindex of an older mem)."""


class DatabaseBusyError(DatabaseError):
    """Another process held a lock for longer than the busy timeout."""


class ScrubPendingError(DatabaseBusyError):
    """Forgotten, but another reader kept old text in the WAL (scrubbed at next open)."""


class ReadOnlyError(DatabaseError):
    """The data folder or the database file cannot be written."""


class DiskFullError(DatabaseError):
    """No space left on the device holding the database."""


class ConfigError(MemError):
    """The config file cannot be read."""

    exit_code = 2


class ModelError(MemError):
    """Anything that went wrong while talking to a model."""

    exit_code = 5


class NoModelError(ModelError):
    """No model is configured for a command that needs one."""


class MissingKeyError(ModelError):
    """The provider needs an API key that is not set."""


class UnknownModelError(ModelError):
    """litellm does not know the model name or its provider."""


class ModelRequestError(ModelError):
    """The provider refused or failed the request (4xx/5xx after retries)."""


class StreamBrokenError(ModelError):
    """The reply stream stopped in the middle."""


class ExtractionError(MemError):
    """Implicit fact extraction failed; the caller falls back and reports it."""


class SecretRefusedError(UsageError):
    """The secret gate refused to store a memory (policy ``refuse``)."""


class InvalidProfileError(UsageError):
    """A profile name that cannot be used as a namespace."""


class EvalDataError(InvalidInputError):
    """An eval folder or questions file that is missing or malformed (``mem eval``)."""


class LocalModelMissingError(ModelError):
    """The offline model was asked for, but the ``local`` extra is not installed."""


class WrongPassphraseError(DatabaseError):
    """An encrypted database could not be opened with the given passphrase."""


class DiskWriteError(DatabaseError):
    """A write to the database failed at the disk (I/O error, file-size limit)."""


class PluginError(MemError):
    """An installed plugin failed to load, or a plugin is malformed (memory.plugins)."""
