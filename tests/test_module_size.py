"""No module of the engine or the CLI is over 400 lines (issue 13).

A module that size holds more than one thing; split it into modules named for what
each holds rather than let it grow."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400


def _line_count(path: Path) -> int:
    with path.open(encoding="utf-8") as handle:
        return sum(1 for _ in handle)


def test_no_module_over_400_lines() -> None:
    sizes = {
        path.relative_to(ROOT).as_posix(): _line_count(path)
        for package in ("memory", "cli")
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert sizes, "no modules found under memory/ or cli/"
    too_long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"
