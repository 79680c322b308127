"""A finished workflow's state leaves the conductor's memory and changelog after its retention;
its result stays (`ended_retention_s`)."""

from __future__ import annotations

import asyncio

import pytest

from podium.client import Client, prepare_topics
from podium.conductor import snapshot as conductor_snapshot
from podium.conductor.conductor import Conductor
from podium.events import topics
from podium.oneshot import build_parts
from podium.runtime.changelog import restore
from podium.services import snapshot as participant_snapshot
from podium.services.participant import Participant
from podium.services.worker import Worker
from podium.workflow.catalog import Catalog
from podium.workflow.loader import load_definitions
from tests.conftest import settings_for
from tests.e2e import services as test_services
from tests.e2e.conftest import FLOWS

pytestmark = pytest.mark.integration


async def test_finished_workflows_are_evicted_and_tombstoned(kafka: str) -> None:
    # no retention: the eviction is due in the very batch that ends the workflow
    settings = settings_for(kafka, retention_s=0)
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
        kafka,
        topics.CONDUCTOR_CHANGELOG,
        set(range(settings.partitions)),
        conductor_snapshot.decode,
    )
    # what is left is the result, to answer a repeated trigger with, and no state
    _, last = snapshots[workflow_id]
    assert last.state is None and last.ended is not None
    assert (last.ended.state, last.ended.output) == ("Succeeded", result.output)


async def test_choreography_services_forget_settled_workflows(kafka: str) -> None:
    """A participant evicts a join once nothing is left for it to do; a small "ended"
    record keeps the id from starting again, so memory and restores stay flat."""
    settings = settings_for(kafka, retention_s=0)
    catalog = Catalog(load_definitions(FLOWS))
    await prepare_topics(kafka, settings, catalog.task_types)
    parts = build_parts(catalog, test_services.services, kafka, settings, "choreography")
    participants = [p for p in parts if isinstance(p, Participant)]
    tasks = [asyncio.create_task(p.run()) for p in parts]
    try:
        await asyncio.wait_for(asyncio.gather(*(p.ready.wait() for p in parts)), 60)
        async with Client(kafka, settings) as client:
            chain, saga = catalog.get("chain"), catalog.get("saga")
            ids = [
                await client.trigger(chain, {"sleep": 0}, mode="choreography") for _ in range(20)
            ]
            ids += [await client.trigger(saga, {}, mode="choreography") for _ in range(5)]
            results = await asyncio.wait_for(asyncio.gather(*map(client.expect, ids)), 60)
            assert [r.state for r in results] == ["Succeeded"] * 20 + ["Compensated"] * 5
            deadline = asyncio.get_running_loop().time() + 20
            while any(w in p._joins for p in participants for w in ids):
                assert asyncio.get_running_loop().time() < deadline, "joins never evicted"
                await asyncio.sleep(0.05)  # polls the participants' memory
            runs = len(test_services.CALLS)
            await client.trigger(saga, {}, workflow_id=ids[-1], mode="choreography")
            again = await asyncio.wait_for(client.expect(ids[-1]), 20)  # the tracker answers
            assert again.state == "Compensated"
    finally:
        for part in parts:
            part.stop()
        await asyncio.gather(*tasks)
    assert len(test_services.CALLS) == runs  # the repeated trigger ran nothing
    for participant in participants:
        restored = await restore(
            kafka,
            participant.changelog,
            set(range(settings.partitions)),
            participant_snapshot.decode,
        )
        # what a restart would load of these workflows: end times, no joins
        assert {type(restored[i][1]) for i in ids if i in restored} <= {participant_snapshot.Ended}
