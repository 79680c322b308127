"""A burst of triggers leaves the conductor's memory, and its changelog's live keys,
bounded: running workflows by `max_running`, finished states by `RETAINED_STATES`, ended
ids by `ended_ids` (each forgotten id tombstoned); beyond `HOT_STATES` states wait as JSON. On the in-memory bus: these are
properties of the conductor, not of a broker."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator

import pytest

from podium.client import Client, prepare_topics
from podium.conductor import conductor as conductor_module
from podium.conductor import snapshot as conductor_snapshot
from podium.conductor.conductor import Conductor
from podium.events import topics
from podium.runtime.changelog import restore
from podium.runtime.settings import ConsumerSettings, Settings
from podium.services.worker import Worker
from podium.workflow.catalog import Catalog
from podium.workflow.loader import load_definitions
from tests.conftest import settings_for
from tests.e2e import services as test_services
from tests.e2e.conftest import FLOWS

_bus = itertools.count()


@contextlib.asynccontextmanager
async def _deployment(settings: Settings) -> AsyncIterator[tuple[Conductor, Catalog]]:
    assert settings.bootstrap_servers is not None
    catalog = Catalog(load_definitions(FLOWS))
    await prepare_topics(settings.bootstrap_servers, settings, catalog.task_types)
    conductor = Conductor(catalog, settings.bootstrap_servers, settings)
    parts = [
        *(Worker(s, settings.bootstrap_servers, settings) for s in test_services.services),
        conductor,
    ]
    tasks = [asyncio.create_task(p.run()) for p in parts]
    try:
        await asyncio.wait_for(asyncio.gather(*(p.ready.wait() for p in parts)), 30)
        yield conductor, catalog
    finally:
        for part in parts:
            part.stop()
        await asyncio.gather(*tasks)


async def test_a_burst_waits_on_the_triggers_topic_beyond_max_running() -> None:
    bus = f"memory://bounded-{next(_bus)}"
    # one record per poll: the cap then holds exactly (beyond it, by one fetched batch)
    settings = settings_for(bus, max_running=3, consumer=ConsumerSettings(max_poll_records=1))
    async with _deployment(settings) as (conductor, catalog):
        most = 0
        route = conductor.route

        def counting(partition: int, event: object, now: float) -> None:
            nonlocal most
            route(partition, event, now)  # type: ignore[arg-type]
            most = max(most, conductor.running())

        conductor.route = counting  # type: ignore[method-assign]
        async with Client(bus, settings) as client:
            chain = catalog.get("chain")
            ids = [await client.trigger(chain, {"sleep": 0.01}) for _ in range(30)]
            results = await asyncio.wait_for(asyncio.gather(*map(client.expect, ids)), 60)
        assert [r.state for r in results] == ["Succeeded"] * 30  # nothing lost, only delayed
        assert most == 3  # the cap was reached, and held


async def test_finished_states_and_ended_ids_stay_bounded_and_leave_the_changelog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(conductor_module, "RETAINED_STATES", 4)
    monkeypatch.setattr(conductor_module, "HOT_STATES", 2)  # the others wait as JSON
    bus = f"memory://bounded-{next(_bus)}"
    settings = settings_for(bus, ended_ids=6)  # retention_s 60 s: only counts evict here
    async with _deployment(settings) as (conductor, catalog), Client(bus, settings) as client:
        chain = catalog.get("chain")
        ids = [await client.trigger(chain, {"sleep": 0}) for _ in range(20)]
        results = await asyncio.wait_for(asyncio.gather(*map(client.expect, ids)), 60)
        assert [r.state for r in results] == ["Succeeded"] * 20
        assert len(conductor._finished) <= 4
        assert len(conductor._ended) <= 6
        # an id still remembered only by its result answers a repeated trigger with it
        remembered = next(i for i in reversed(ids) if i in conductor._ended)
        again = await client.trigger(chain, {"sleep": 0}, workflow_id=remembered)
        repeated = await asyncio.wait_for(client.expect(again), 20)
        assert repeated.output == results[ids.index(remembered)].output
    live = await restore(
        bus, topics.CONDUCTOR_CHANGELOG, set(range(settings.partitions)), conductor_snapshot.decode
    )
    # what the changelog still holds is what the conductor still knew: 4 states, 6 results
    assert set(live) <= set(ids)
    assert sum(1 for _, s in live.values() if s.state is not None) <= 4
    assert sum(1 for _, s in live.values() if s.ended is not None) <= 6
