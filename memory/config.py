"""Where mem keeps its files, and the user's settings.

Precedence for every setting: command-line option, then environment variable,
then the TOML config file, then the default. ``MEM_HOME`` moves both the data
and the config file (tests and scripts rely on this to stay isolated).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, InvalidProfileError

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


def db_path(override: str | os.PathLike[str] | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    return data_dir() / "mem.db"


@dataclass
class Config:
    """Settings from the config file; see README for each key."""

    model: str | None = None
    api_base: str | None = None
    embedder: str | None = None
    profile: str = DEFAULT_PROFILE
    memory: str = "summary-buffer"
    window: int = 8
    budget: int | None = None
    reply_tokens: int = 1024
    summary_trigger_tokens: int = 2000
    recency_half_life_days: float = 30.0
    extraction: bool = True
    secrets: str = "redact"
    retention: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


def load_config(path: Path | None = None) -> Config:
    """Read the TOML file (missing file: defaults; broken file: ConfigError)."""
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
    cfg = Config(raw=raw)
    for key in (
        "model",
        "api_base",
        "embedder",
        "profile",
        "memory",
        "window",
        "budget",
        "reply_tokens",
        "summary_trigger_tokens",
        "recency_half_life_days",
        "extraction",
        "secrets",
    ):
        if key in raw:
            setattr(cfg, key, raw[key])
    retention = raw.get("retention", {})
    if not isinstance(retention, dict):
        raise ConfigError(f'In {target}: [retention] must be a table of kind = "365d" entries.')
    cfg.retention = {str(k): str(v) for k, v in retention.items()}
    return cfg


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


def resolve_embedder(option: str | None, cfg: Config | None = None) -> str | None:
    return option or os.environ.get("MEM_EMBEDDER") or (cfg.embedder if cfg else None)
