"""A finished workflow's state leaves the conductor's memory and changelog after its retention;
its result stays (`ended_retention_s`)."""

from __future__ import annotations

import asyncio

import pytest

import conductor.conductor as conductor_module
from conductor.conductor import Conductor
from events import topics
from podium.changelog import restore
from podium.client import Client, prepare_topics
from podium.settings import Settings
from services.worker import Worker
from tests.e2e import services as test_services
from tests.e2e.conftest import FLOWS
from workflow.catalog import Catalog
from workflow.loader import load_definitions

pytestmark = pytest.mark.integration


async def test_finished_workflows_are_evicted_and_tombstoned(kafka: str) -> None:
    # no retention: the eviction is due in the very batch that ends the workflow
    settings = Settings(bootstrap_servers=kafka, retention_s=0)
    catalog = Catalog(load_definitions(FLOWS))
    await prepare_topics(kafka, settings, catalog.task_types)
    conductor = Conductor(catalog, kafka, settings)
    parts = [*(Worker(s, kafka, settings) for s in test_services.services), conductor]
    tasks = [asyncio.create_task(p.run()) for p in parts]
    try:
        await asyncio.wait_for(asyncio.gather(*(p.ready.wait() for p in parts)), 60)
        async with Client(kafka, settings) as client:
            workflow_id = await client.trigger(catalog.get("fanout"), {"n": 1})
            result = await asyncio.wait_for(client.expect(workflow_id), 20)
            assert result.state == "Succeeded"
            assert conductor.state_of(workflow_id) is None
    finally:
        for part in parts:
            part.stop()
        await asyncio.gather(*tasks)
    snapshots = await restore(
        kafka, topics.CONDUCTOR_CHANGELOG, set(range(settings.partitions)), conductor_module._parse
    )
    # what is left is the result, to answer a repeated trigger with, and no state
    _, last = snapshots[workflow_id]
    assert last.state is None and last.ended is not None
    assert (last.ended.state, last.ended.output) == ("Succeeded", result.output)
