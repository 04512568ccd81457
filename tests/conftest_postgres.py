"""PostgreSQL for the tests: the session's server (tests/pg_server.py) and a
fresh database per test. Without pgserver and without MEM_TEST_POSTGRES_URL
the PostgreSQL tests skip, which MEM_REQUIRE_ALL_TESTS=1 turns into failures."""

from __future__ import annotations

import pytest
from pg_server import fresh_database, server_url, stop


@pytest.fixture
def pg_url() -> str:
    """A superuser URL of a new, empty database."""
    if server_url() is None:
        pytest.skip("no PostgreSQL: pip install pgserver, or set MEM_TEST_POSTGRES_URL")
    return fresh_database()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop()
