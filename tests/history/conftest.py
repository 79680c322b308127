"""The history store's databases: a SQLite file per test, and a PostgreSQL database per
test on one server per session (skipped, with the reason, where the server cannot run)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from podium.history.database import Database
from tests.history.postgres import create_database, postgres_server, unavailable

_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """The URL of a throwaway PostgreSQL server's `postgres` database."""
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty, migrated history database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'history.db'}"
    else:
        url = await create_database(request.getfixturevalue("postgres"), f"t{next(_numbers)}")
    database = Database(url)
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()
