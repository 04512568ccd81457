"""The config file: every key checked once, with the file and the key named."""

from __future__ import annotations

import json
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from memory.config import Config, load_config
from memory.errors import ConfigError


def _write(home: Path, text: str) -> Path:
    path = home / "config.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('window = "8"', 'window must be a whole number, not "8": write e.g. window = 8.'),
        ('window = "abc"', 'window must be a whole number, not "abc": write e.g. window = 8.'),
        ("window = 2.5", "window must be a whole number, not 2.5: write e.g. window = 8."),
        ("window = true", "window must be a whole number, not true: write e.g. window = 8."),
        ("window = 0", "window must be from 1 to 10000, not 0."),
        ("window = 99999999999999999", "window must be from 1 to 10000, not 99999999999999999."),
        ("budget = 100", "budget must be from 256 to 10000000, not 100."),
        (
            'memory = "everything"',
            'memory must be one of buffer, window, summary, summary-buffer, not "everything".',
        ),
        (
            'secrets = "ignore"',
            'secrets must be one of redact, refuse, allow, not "ignore".',
        ),
        (
            'extraction = "yes"',
            'extraction must be true or false, not "yes": write e.g. extraction = true.',
        ),
        ("model = 4", 'model must be a string, not 4: write e.g. model = "...".'),
        (
            "recency_half_life_days = nan",
            "recency_half_life_days must be a finite number, not nan.",
        ),
        (
            "recency_half_life_days = 0",
            "recency_half_life_days must be from 0.01 to 100000, not 0.",
        ),
        (
            "windw = 8",
            "unknown key 'windw' (did you mean 'window'?); the keys are listed in the README.",
        ),
        ("colour = 1", "unknown key 'colour'; the keys are listed in the README."),
        ("retention = 5", '[retention] must be a table of kind = "365d" entries.'),
    ],
)
def test_bad_values_name_the_key_and_the_file(
    cli: Any, mem_home: Path, text: str, message: str
) -> None:
    path = _write(mem_home, text + "\n")
    res = cli("list", code=2)
    assert res.stderr == f"Error: In {path}: {message}\n"
    assert "unexpected" not in res.stderr
    with pytest.raises(ConfigError):
        load_config(path)


def _wrong_value(name: str) -> Any:
    """A TOML value of the wrong type for the field."""
    hint = str(typing.get_type_hints(Config)[name])
    return 3 if "str" in hint and "dict" not in hint else "text"


@pytest.mark.parametrize("name", [f.name for f in fields(Config) if not f.metadata.get("internal")])
def test_every_key_is_type_checked(mem_home: Path, name: str) -> None:
    value = _wrong_value(name)
    path = _write(mem_home, f"{name} = {json.dumps(value)}\n")
    with pytest.raises(ConfigError, match=rf"^In {path}: .*{name}"):
        load_config(path)


def test_a_good_file_loads(mem_home: Path) -> None:
    path = _write(
        mem_home,
        'model = "openai/x"\nwindow = 4\nbudget = 4000\nmemory = "window"\n'
        "recency_half_life_days = 7\nextraction = false\n"
        '[retention]\nmessage = "365d"\n',
    )
    cfg = load_config(path)
    assert (cfg.model, cfg.window, cfg.budget, cfg.memory) == ("openai/x", 4, 4000, "window")
    assert cfg.recency_half_life_days == 7.0 and isinstance(cfg.recency_half_life_days, float)
    assert cfg.extraction is False and cfg.retention == {"message": "365d"}


def test_one_settings_type() -> None:
    from memory import config
    from memory.assistant import turn as assistant

    assert assistant.Settings is Config
    assert assistant.STRATEGIES == config.STRATEGIES


def test_command_line_overrides_the_file(fake_llm: Any, cli: Any, mem_home: Path) -> None:
    _write(mem_home, "window = 2\nbudget = 3000\n")
    prompt = cli.json("ask", "--show-prompt", "--budget", "5000", "hi")
    assert prompt["budget"] == 5000
    assert cli.json("ask", "--show-prompt", "hi")["budget"] == 3000


def test_recency_half_life_reaches_ranking(cli: Any, mem_home: Path, tmp_path: Path) -> None:
    """recency_half_life_days was parsed and never used."""
    rows = [
        {
            "type": "memory",
            "content": "the heron nests by the lake",
            "kind": "fact",
            "created_at": "2020-01-01T00:00:00",
        },
    ]
    path = tmp_path / "old.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("import", str(path))

    def score() -> float:
        [hit] = cli.json("search", "heron")
        return float(hit["score"])

    default = score()
    _write(mem_home, "recency_half_life_days = 100000\n")
    slow_decay = score()
    assert slow_decay > default * 1.1  # an old memory keeps its recency nudge
    _write(mem_home, "recency_half_life_days = 30\n")
    assert score() == pytest.approx(default)
