"""CI turns every skip into a failure (MEM_REQUIRE_ALL_TESTS=1, set by .ci/run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = """
import pytest

def test_skipped():
    pytest.skip("no widget here")

@pytest.mark.xfail(reason="known bug", strict=True)
def test_expected_failure():
    assert False

def test_passes():
    pass
"""


def run(tmp_path: Path, require: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}")
    env.pop("MEM_REQUIRE_ALL_TESTS", None)
    if require is not None:
        env["MEM_REQUIRE_ALL_TESTS"] = require
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-rs"]
        + ["-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path / "test_sample.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("require", [None, "0"])
def test_a_skip_is_a_skip_locally(tmp_path: Path, require: str | None) -> None:
    out = run(tmp_path, require)
    assert out.returncode == 0, out.stdout
    assert "1 passed, 1 skipped, 1 xfailed" in out.stdout
    assert "SKIPPED [1]" in out.stdout and "no widget here" in out.stdout


def test_a_skip_fails_when_ci_requires_every_test(tmp_path: Path) -> None:
    out = run(tmp_path, "1")
    assert out.returncode == 1, out.stdout
    assert "1 failed, 1 passed, 1 xfailed" in out.stdout  # an xfail is not a skip
    assert "skipped (no widget here), but MEM_REQUIRE_ALL_TESTS=1" in out.stdout


def test_ci_requires_every_test() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    at = ci.index(".venv/bin/python -m pytest")
    assert "export MEM_REQUIRE_ALL_TESTS=1" in ci[:at]
