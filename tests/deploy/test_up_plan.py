"""What `podium up` makes of the compose file's PostgreSQL service: a local server with the
service's user and database (the history URL keeps them, only the address moves), or,
where there is none, a SQLite file, with the reason said."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from podium import postgres, up
from podium.broker import free_port

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def history_urls(plan: up.Plan) -> set[str]:
    return {s.env["PODIUM_HISTORY_URL"] for s in plan.services if "PODIUM_HISTORY_URL" in s.env}


def test_postgres_is_a_local_server_with_the_services_user_and_database(tmp_path: Path) -> None:
    plan = up.plan(up.load(COMPOSE, []), tmp_path)
    database, port = plan.databases["postgres"]
    assert database == postgres.Database(user="podium", name="podium")
    assert history_urls(plan) == {f"postgresql://podium:podium@127.0.0.1:{port}/podium"}
    assert "a local PostgreSQL" in plan.replaced["postgres"]


def test_without_a_local_server_postgres_is_sqlite_and_says_why(tmp_path: Path) -> None:
    plan = up.plan(up.load(COMPOSE, []), tmp_path, sqlite_because="no initdb here")
    assert plan.databases == {}
    assert history_urls(plan) == {f"sqlite:///{(tmp_path / 'history.db').resolve()}"}
    assert plan.replaced["postgres"].endswith("(no initdb here)")


def test_the_image_defaults_when_the_service_names_no_user_or_database() -> None:
    assert up._database({"image": "postgres:17"}) == postgres.Database("postgres", "postgres")
    named = {"environment": ["POSTGRES_USER=app"]}
    assert up._database(named) == postgres.Database("app", "app")


@pytest.mark.skipif(postgres.unavailable() is not None, reason=str(postgres.unavailable()))
def test_the_local_server_holds_that_database() -> None:
    import asyncpg

    port = free_port()

    async def ask() -> tuple[str, str]:
        url = f"postgresql://podium:podium@127.0.0.1:{port}/shop"
        connection = await asyncpg.connect(url)
        try:
            row = await connection.fetchrow("SELECT current_user, current_database()")
        finally:
            await connection.close()
        return row[0], row[1]

    with postgres.server(postgres.Database("podium", "shop"), port):
        assert asyncio.run(ask()) == ("podium", "shop")
