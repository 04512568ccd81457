"""Where mem keeps its files, and the user's settings.

Precedence for every setting: command-line option, then environment variable,
then the TOML config file, then the default. ``MEM_HOME`` moves both the data
and the config file (tests and scripts rely on this to stay isolated).
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from memory.errors import ConfigError, InvalidProfileError, UsageError

APP = "mem"
DEFAULT_PROFILE = "default"
SYSTEM_PROFILE = "system"


def data_dir() -> Path:
    home = os.environ.get("MEM_HOME")
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP))


def config_path() -> Path:
    explicit = os.environ.get("MEM_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("MEM_HOME")
    if home:
        return Path(home).expanduser() / "config.toml"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


# A database named by one of these is a PostgreSQL server (the "postgres"
# storage backend); anything else is a SQLite file.
SERVER_SCHEMES = ("postgresql://", "postgres://")


def is_server_url(value: object) -> bool:
    """Whether ``value`` (a --db, MEM_DB or config ``db``) names a PostgreSQL server."""
    return isinstance(value, str) and value.strip().lower().startswith(SERVER_SCHEMES)


def db_target(override: str | os.PathLike[str] | None = None) -> Path | str:
    """The database to open: ``override`` (--db), else ``MEM_DB``, else the
    default file. A server URL is returned as given (it may hold a password:
    never print it; ``memory.storage.postgres.redact``), a path as a Path."""
    value = override or os.environ.get("MEM_DB") or None
    if is_server_url(value):
        return str(value).strip()
    return db_path(value)


def db_path(override: str | os.PathLike[str] | None = None) -> Path:
    """The SQLite file (``override``, else ``MEM_DB``, else the default). A
    server URL is no file: the commands that need one say so."""
    value = override or os.environ.get("MEM_DB") or None
    if is_server_url(value):
        raise UsageError(
            "This works on a SQLite database file, and --db / MEM_DB / the config's db names "
            "a PostgreSQL server: give a file path (--db PATH)."
        )
    if value:
        return Path(value).expanduser()
    return data_dir() / "mem.db"


def server_home(url: str) -> Path:
    """Where files that sit next to a SQLite database (the REPL's input
    history) go for a server database: a folder of the data directory named
    by a digest of the URL without its password."""
    import hashlib

    bare = re.sub(r"^([a-z]+://[^:@/?#]*):[^@/?#]*@", r"\1@", url.strip(), flags=re.I)
    bare = re.sub(r"password\s*=\s*\S*", "", bare, flags=re.I)
    digest = hashlib.sha256(bare.encode()).hexdigest()[:16]
    return data_dir() / "servers" / digest


STRATEGIES = ("buffer", "window", "summary", "summary-buffer")
SECRET_POLICIES = ("redact", "refuse", "allow")
WINDOW_RANGE = (1, 10_000)  # turns
BUDGET_RANGE = (256, 10_000_000)  # tokens


def _rule(
    low: float | None = None, high: float | None = None, choices: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {"range": (low, high), "choices": choices}


@dataclass
class Config:
    """The user's settings: the config file's keys (see README), and what the
    assistant runs with after the command line's options (``memory.assistant.turn``
    calls it ``Settings``). Each field's metadata bounds it; :func:`load_config`
    checks every key of the file against them once."""

    model: str | None = None
    db: str | None = None  # a SQLite file or a postgresql:// URL (--db, MEM_DB first)
    api_base: str | None = None
    embedder: str | None = None
    profile: str = DEFAULT_PROFILE
    memory: str = field(default="summary-buffer", metadata=_rule(choices=STRATEGIES))
    window: int = field(default=8, metadata=_rule(*WINDOW_RANGE))
    budget: int | None = field(default=None, metadata=_rule(*BUDGET_RANGE))
    reply_tokens: int = field(default=1024, metadata=_rule(16, 1_000_000))
    summary_trigger_tokens: int = field(default=2000, metadata=_rule(64, 10_000_000))
    # in-context examples in a prompt get this many tokens at most; 0 shows none
    example_tokens: int = field(default=500, metadata=_rule(0, 1_000_000))
    # search's recency nudge halves every this many days (memory.retrieval.ranking)
    recency_half_life_days: float = field(default=30.0, metadata=_rule(0.01, 100_000))
    extraction: bool = True
    secrets: str = field(default="redact", metadata=_rule(choices=SECRET_POLICIES))
    retention: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, metadata={"internal": True})

    def __post_init__(self) -> None:
        # Values given in code or on the command line (the file's are checked
        # with its name by load_config).
        if self.memory not in STRATEGIES:
            raise UsageError(
                f"Unknown memory strategy {self.memory!r}: use one of {', '.join(STRATEGIES)}."
            )
        if self.window < WINDOW_RANGE[0]:
            raise UsageError(f"Invalid --window {self.window}: use at least 1 turn.")
        if self.budget is not None and self.budget < BUDGET_RANGE[0]:
            raise UsageError(
                f"Invalid --budget {self.budget}: use at least {BUDGET_RANGE[0]} tokens."
            )


_TYPE_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}


def _field_type(name: str) -> type:
    hints = typing.get_type_hints(Config)
    kinds = [t for t in typing.get_args(hints[name]) if t is not type(None)] or [hints[name]]
    origin = typing.get_origin(kinds[0]) or kinds[0]
    return origin if isinstance(origin, type) else str


def _check_value(target: Path, key: str, value: Any) -> Any:
    """The file's value for ``key``, or a ConfigError naming the key, the file and the fix."""
    spec = next(f for f in fields(Config) if f.name == key)
    want = _field_type(key)
    given = value  # as written, for the messages
    ok = (
        isinstance(value, bool)
        if want is bool
        else isinstance(value, int | float) and not isinstance(value, bool)
        if want is float
        else isinstance(value, want) and not (want is int and isinstance(value, bool))
    )
    if not ok:
        example = spec.default if spec.default not in (None, MISSING) else None
        if want is int:
            example = example if example is not None else BUDGET_RANGE[0]
        shown = json.dumps(example) if example is not None else '"..."'
        if want is bool:
            shown = "true" if example else "false"
        raise ConfigError(
            f"In {target}: {key} must be {_TYPE_WORDS.get(want, 'a table')}, not "
            f"{_toml(value)}: write e.g. {key} = {shown}."
        )
    if want is float:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"In {target}: {key} must be a finite number, not {value}.")
    low, high = spec.metadata.get("range", (None, None))
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(
            f"In {target}: {key} must be from {_toml(low)} to {_toml(high)}, not {_toml(given)}."
        )
    choices = spec.metadata.get("choices", ())
    if choices and value not in choices:
        raise ConfigError(
            f"In {target}: {key} must be one of {', '.join(choices)}, not {_toml(value)}."
        )
    return value


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return json.dumps(value, ensure_ascii=False)
    return f"a {type(value).__name__}"


def validate(raw: dict[str, Any], target: Path) -> dict[str, Any]:
    """Every key of the file checked once: unknown keys (with a "did you mean"),
    types, ranges and choices. Returns the values to build a Config with."""
    known = [f.name for f in fields(Config) if not f.metadata.get("internal")]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"In {target}: unknown key {key!r}{hint}; the keys are listed in the README."
            )
        if key == "retention":
            if not isinstance(value, dict):
                raise ConfigError(
                    f'In {target}: [retention] must be a table of kind = "365d" entries.'
                )
            values[key] = {str(k): str(v) for k, v in value.items()}
            continue
        values[key] = _check_value(target, key, value)
    return values


def load_config(path: Path | None = None) -> Config:
    """Read and check the TOML file (missing file: defaults; a broken file or a
    bad value: a ConfigError naming the file and the key)."""
    target = path or config_path()
    try:
        with open(target, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raw = {}
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(
            f"Cannot read {target}: {err}; fix the TOML or delete the file."
        ) from None
    except OSError as err:
        raise ConfigError(f"Cannot read {target}: {err.strerror}; check its permissions.") from None
    return Config(raw=raw, **validate(raw, target))


_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def validate_profile(name: str) -> str:
    """Profiles are namespaces in every table: keep their names plain."""
    if not _PROFILE_NAME.match(name):
        raise InvalidProfileError(
            f"Invalid profile name {name!r}: use up to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return name


def resolve_profile(option: str | None, cfg: Config | None = None) -> str:
    return option or os.environ.get("MEM_PROFILE") or (cfg.profile if cfg else DEFAULT_PROFILE)


def resolve_model(option: str | None, cfg: Config) -> str | None:
    """``--model``, then ``MEM_MODEL``, then the config file."""
    return option or os.environ.get("MEM_MODEL") or cfg.model or None


def resolve_db(
    option: str | os.PathLike[str] | None, cfg: Config | None = None
) -> str | os.PathLike[str] | None:
    """``--db``, then ``MEM_DB``, then the config file's ``db`` (None: the default file)."""
    return option or os.environ.get("MEM_DB") or (cfg.db if cfg else None) or None


def resolve_embedder(option: str | None, cfg: Config | None = None) -> str | None:
    return option or os.environ.get("MEM_EMBEDDER") or (cfg.embedder if cfg else None)
