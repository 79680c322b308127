"""The reads the HTTP API adds, on SQLite and PostgreSQL: time range, paging, counts by
state, a workflow set by id, change fingerprints, the recorded definitions."""

from __future__ import annotations

import itertools
from pathlib import Path

from podium.events import Mode
from podium.history.database import Database
from podium.workflow.loader import load_definition
from tests.history.stories import T0, etl_run, order_saga
from tests.history.test_store import write

ROOT = Path(__file__).resolve().parents[2]


async def test_time_range_paging_counts_and_ids(database: Database) -> None:
    saga, etl, running = order_saga("wf-1"), etl_run("wf-2", base=1), etl_run("wf-3", base=2)
    await write(database, [*saga.events, *etl.events, *running.events[:3]])

    async def ids(**filters: object) -> list[str]:
        return [row["workflow_id"] for row in await database.workflows(**filters)]  # type: ignore[arg-type]

    assert await ids() == ["wf-3", "wf-2", "wf-1"]
    assert await ids(since=T0 + 0.5) == ["wf-3", "wf-2"]
    assert await ids(until=T0 + 1.5) == ["wf-2", "wf-1"]
    assert await ids(since=T0 + 0.5, until=T0 + 1.5) == ["wf-2"]
    assert await ids(limit=2, offset=1) == ["wf-2", "wf-1"]
    assert await ids(offset=3) == []
    assert await ids(ids=["wf-1", "wf-3", "nope"]) == ["wf-3", "wf-1"]
    assert await database.count() == {"Compensated": 1, "Succeeded": 1, "Running": 1}
    assert await database.count(name="etl", since=T0 + 0.5) == {"Succeeded": 1, "Running": 1}
    assert await database.count(mode=Mode.CHOREOGRAPHY) == {}


async def test_a_fingerprint_moves_with_every_change_of_a_workflows_rows(
    database: Database,
) -> None:
    story = etl_run("wf-1", Mode.CHOREOGRAPHY)
    await write(database, story.events[:2])
    marks = [await database.fingerprints(newest=10)]
    for event in story.events[2:]:
        await write(database, [event])
        marks.append(await database.fingerprints(newest=10))
    assert all(list(mark) == ["wf-1"] for mark in marks)
    moved = [before["wf-1"] != after["wf-1"] for before, after in itertools.pairwise(marks)]
    assert all(moved), moved
    await write(database, order_saga("wf-2", base=1).events)
    # ended and older than the newest one: no longer watched
    assert list(await database.fingerprints(newest=1)) == ["wf-2"]


async def test_the_recorded_definitions_are_listed(database: Database) -> None:
    order = load_definition(ROOT / "examples" / "order" / "order.yaml")
    etl = load_definition(ROOT / "examples" / "etl" / "etl.yaml")
    await database.put_definitions([etl.model_dump(mode="json"), order.model_dump(mode="json")])
    bodies = await database.definitions()
    assert [(b["name"], b["version"]) for b in bodies] == [("etl", 1), ("order", 1)]
    assert bodies[1]["tasks"][0]["id"] == "reserve"
