"""The history store's contract, the same cases on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from podium import show
from podium.client import result_json
from podium.events import CloudEvent, Mode
from podium.history import schema
from podium.history.database import Database, HistoryError, async_url
from podium.history.rows import Batch
from podium.workflow.loader import load_definition
from tests.history.postgres import create_database
from tests.history.stories import T0, etl_run, iso, order_saga

ORDER = load_definition(Path("examples/order/order.yaml"))
ETL = load_definition(Path("examples/etl/etl.yaml"))
_numbers = itertools.count()


def near(value: float) -> Any:
    """Times are microseconds on the wire (CloudEvents, ISO strings)."""
    return pytest.approx(value, abs=2e-6)


async def write(database: Database, events: list[CloudEvent], batches: int = 1) -> None:
    """The events in `batches` consecutive batches, as a consumer would hand them over."""
    size = max(1, -(-len(events) // batches))
    for start in range(0, len(events), size):
        batch = Batch()
        for event in events[start : start + size]:
            batch.add(event)
        await database.write(batch)


async def dump(database: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in key order."""
    tables = {}
    async with database.engine.connect() as connection:
        for table in (schema.workflows, schema.attempts):
            query = sa.select(table).order_by(*table.primary_key.columns)
            tables[table.name] = [dict(r._mapping) for r in await connection.execute(query)]
    return tables


async def test_the_migrations_create_the_schema_the_code_declares(database: Database) -> None:
    def differences(connection: sa.Connection) -> list[Any]:
        options = {"version_table": schema.VERSION_TABLE}
        context = MigrationContext.configure(connection, opts=options)
        return compare_metadata(context, schema.metadata)  # type: ignore[no-any-return]

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []
    await database.migrate()  # at the head already: nothing to do


async def test_a_store_made_before_0001_was_edited_is_repaired_and_written_to(
    tmp_path: Path,
) -> None:
    """0001 gained `attempts.reason` and lost `transitions` before the first release: a
    store made by its first cut is at 0001 without the column, and every write failed."""
    path = tmp_path / "old.db"
    old = sa.create_engine(f"sqlite:///{path}")
    with old.begin() as connection:  # 0001's first cut: today's 0001, the old way
        schema.metadata.create_all(connection)
        connection.execute(sa.text("ALTER TABLE attempts DROP COLUMN reason"))
        connection.execute(sa.text("CREATE TABLE transitions (workflow_id VARCHAR)"))
        connection.execute(sa.text(f"CREATE TABLE {schema.VERSION_TABLE} (version_num VARCHAR)"))
        connection.execute(sa.text(f"INSERT INTO {schema.VERSION_TABLE} VALUES ('0001')"))
    old.dispose()
    database = Database(f"sqlite:///{path}")
    try:
        await database.migrate()
        story = order_saga()
        await write(database, story.events)
        workflow = await database.workflow("wf-order")
        assert workflow is not None and workflow["state"] == "Compensated"
        async with database.engine.connect() as connection:
            tables = await connection.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert "transitions" not in tables
    finally:
        await database.close()


async def test_a_saga_is_recorded_with_its_attempts(database: Database) -> None:
    story = order_saga()
    await write(database, story.events)

    workflow = await database.workflow("wf-order")
    assert workflow is not None
    assert (workflow["name"], workflow["version"], workflow["mode"]) == (
        "order",
        1,
        "orchestration",
    )
    assert workflow["state"] == "Compensated"
    assert workflow["input"] == {"sku": "A-1", "qty": 2, "amount": 5000}
    assert workflow["error"] == {
        "type": "TaskError",
        "message": "card declined",
        "retryable": False,
    }
    assert (workflow["started_at"], workflow["ended_at"]) == (near(T0), near(T0 + 0.241))
    assert workflow["duration_s"] == near(0.241)
    assert workflow["result"] == story.end.model_dump(mode="json")

    attempts = {
        (a["task_id"], a["compensation"], a["attempt"]): a
        for a in await database.attempts("wf-order")
    }
    assert sorted(attempts) == [
        ("charge", False, 1), ("reserve", False, 1), ("reserve", False, 2), ("reserve", True, 1),
    ]  # fmt: skip
    first, second = attempts[("reserve", False, 1)], attempts[("reserve", False, 2)]
    assert (first["state"], first["error"]["type"]) == ("Failed", "ConnectionError")
    assert (second["state"], second["output"]) == ("Succeeded", {"reservation_id": "r-1"})
    assert second["input"] == {"sku": "A-1", "qty": 2}
    assert (second["task_type"], second["mode"]) == ("inventory.reserve", "orchestration")
    assert second["scheduled_at"] == near(T0 + 0.210)
    assert second["queued_s"] == near(0.002)
    assert second["duration_s"] == near(0.008)  # handler start to outcome
    undo = attempts[("reserve", True, 1)]
    assert (undo["task_type"], undo["output"]) == ("inventory.release", {"released": "r-1"})

    assert (undo["scheduled_at"], undo["started_at"]) == (near(T0 + 0.231), near(T0 + 0.233))


async def test_rows_are_the_same_whatever_the_order_and_however_often_read(
    database: Database,
) -> None:
    """Topics are not ordered among each other, and a crash replays a batch."""
    events = order_saga().events + etl_run().events + etl_run("wf-etl-c", Mode.CHOREOGRAPHY).events
    await write(database, events)
    expected = await dump(database)
    for seed in range(3):
        shuffled = random.Random(seed).sample(events, len(events))
        await write(database, shuffled, batches=1 + seed * 7)
        assert await dump(database) == expected
    other = Database(str(database.url))  # and a second store that reads them all again
    try:
        await write(other, list(reversed(events)), batches=5)
    finally:
        await other.close()
    assert await dump(database) == expected


async def test_rows_written_in_any_order_equal_the_rows_written_in_order(
    database: Database, tmp_path: Path
) -> None:
    events = order_saga().events
    await write(database, list(reversed(events)), batches=len(events))
    in_order = Database(f"sqlite:///{tmp_path / 'in-order.db'}")
    try:
        await in_order.migrate()
        await write(in_order, events)
        assert await dump(database) == await dump(in_order)
    finally:
        await in_order.close()


async def test_status_of_an_ended_workflow_is_its_run_result_exactly(database: Database) -> None:
    for story in (order_saga(), etl_run("wf-etl-c", Mode.CHOREOGRAPHY)):
        await write(database, story.events)
        assert await show.status(database, story.workflow_id) == result_json(
            story.workflow_id, story.end
        )
    assert await show.status(database, "no-such-id") is None
    assert await show.history(database, "no-such-id") is None


async def test_a_running_workflow_has_the_shape_of_a_result(database: Database) -> None:
    await database.put_definitions([ORDER.model_dump(mode="json")])
    running = order_saga().events[:4]  # started; reserve's first attempt failed, retryable
    await write(database, running)
    status = await show.status(database, "wf-order")
    assert status is not None
    assert set(status) == set(result_json("x", order_saga().end))
    assert (status["state"], status["ended_at"]) == ("Running", None)
    assert status["tasks"] == {
        "reserve": {"state": "Retrying", "attempts": 1, "output": None, "error": {
            "type": "ConnectionError", "message": "flaked", "retryable": True}},
        "charge": {"state": "Pending", "attempts": 0, "output": None, "error": None},
        "ship": {"state": "Pending", "attempts": 0, "output": None, "error": None},
    }  # fmt: skip


async def test_history_shows_retries_skips_and_the_saga_in_both_modes(database: Database) -> None:
    await database.put_definitions([ORDER.model_dump(mode="json"), ETL.model_dump(mode="json")])
    etl_o, etl_c = etl_run("wf-etl-o"), etl_run("wf-etl-c", Mode.CHOREOGRAPHY)
    for story in (order_saga(), etl_o, etl_c):
        await write(database, story.events)

    saga = await show.history(database, "wf-order")
    assert saga is not None
    steps = [(e["task_id"], e["compensation"], e["from_state"], e["to_state"]) for e in saga]
    assert steps == [
        (None, False, None, "Running"),
        ("reserve", False, "Pending", "Running"),
        ("reserve", False, "Running", "Retrying"),
        ("reserve", False, "Retrying", "Running"),
        ("reserve", False, "Running", "Succeeded"),
        ("charge", False, "Pending", "Running"),
        ("charge", False, "Running", "Failed"),
        (None, False, "Running", "Compensating"),
        ("reserve", True, "Pending", "Running"),
        ("reserve", True, "Running", "Succeeded"),
        (None, False, "Compensating", "Compensated"),
    ]
    retried = saga[3]
    assert (retried["attempt"], retried["duration_s"]) == (2, near(0.2))
    assert retried["input"] == {"sku": "A-1", "qty": 2}
    assert saga[2]["error"]["type"] == "ConnectionError"
    assert saga[-1]["duration_s"] == near(0.011)  # compensating, 0.230 -> 0.241

    # the same shape in both modes; orchestration's skip is derived from the DAG
    for story in (etl_o, etl_c):
        entries = await show.history(database, story.workflow_id)
        assert entries is not None
        skip = [e for e in entries if e["to_state"] == "Skipped"]
        assert [(e["task_id"], e["from_state"]) for e in skip] == [("enrich", "Pending")]
        # orchestration: when extract's success resolved it; choreography: its verdict's time
        assert skip[0]["time"] == (entries[2]["time"] if story is etl_o else iso(0.021))
        assert [e["to_state"] for e in entries].count("Succeeded") == 7  # 6 tasks + workflow


async def test_list_filters_and_orders_newest_first(database: Database) -> None:
    stories = [order_saga("wf-1"), etl_run("wf-2", base=1), etl_run("wf-3", Mode.CHOREOGRAPHY, 2)]
    for story in stories:  # the last one still running
        await write(database, story.events[:1] if story.workflow_id == "wf-3" else story.events)

    def ids(items: list[dict[str, Any]]) -> list[str]:
        return [i["workflow_id"] for i in items]

    assert ids(await show.workflows(database)) == ["wf-3", "wf-2", "wf-1"]
    assert ids(await show.workflows(database, state="Running")) == ["wf-3"]
    assert ids(await show.workflows(database, name="etl")) == ["wf-3", "wf-2"]
    assert ids(await show.workflows(database, mode="orchestration")) == ["wf-2", "wf-1"]
    assert ids(await show.workflows(database, limit=1)) == ["wf-3"]
    listed = (await show.workflows(database, name="order"))[0]
    assert listed == {
        "workflow_id": "wf-1",
        "workflow": "order",
        "version": 1,
        "mode": "orchestration",
        "state": "Compensated",
        "started_at": stories[0].end.started_at,
        "ended_at": stories[0].end.ended_at,
        "duration_s": near(0.241),
    }


async def test_two_processes_migrating_one_new_database_at_once(
    database: Database, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A `podium run` starting beside a history store: both migrate, one wins."""
    if database.is_sqlite:
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        url = await create_database(request.getfixturevalue("postgres"), f"f{next(_numbers)}")
    migrate = f"import asyncio; from podium.history.database import Database; asyncio.run(Database({url!r}).migrate())"
    both = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", migrate, stderr=PIPE)
        for _ in range(2)
    ]
    for process in both:
        _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
    writer = Database(url)
    try:
        await write(writer, order_saga().events)
        assert (await writer.workflow("wf-order")) is not None
    finally:
        await writer.close()


async def test_a_reader_of_a_missing_file_sees_nothing_and_creates_nothing(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nothing-here.db"
    reader = Database(f"sqlite:///{missing}")
    assert await reader.workflows() == []
    assert await show.status(reader, "wf") is None
    await reader.close()
    assert not missing.exists()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:////abs/history.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///history.db", "sqlite+aiosqlite"),
        ("postgresql://u:p@h/db", "postgresql+asyncpg"),
        ("postgres://u:p@h/db", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u:p@h:5433/db", "postgresql+asyncpg"),
    ],
)
def test_plain_urls_get_the_async_driver(url: str, driver: str) -> None:
    assert async_url(url).drivername == driver


@pytest.mark.parametrize("url", ["mysql://h/db", "not a url"])
def test_other_urls_are_refused_in_one_line(url: str) -> None:
    with pytest.raises(HistoryError) as refused:
        async_url(url)
    assert "\n" not in str(refused.value)
