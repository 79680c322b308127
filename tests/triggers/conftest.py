"""A deployment of each mode on the in-memory bus, for the trigger tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from podium.client import Client, prepare_topics
from podium.conductor.conductor import Tracker
from podium.oneshot import build_parts
from podium.runtime import memory
from podium.runtime.changelog import read_partitions
from podium.triggers.gateway import Gateway
from podium.workflow.catalog import Catalog
from podium.workflow.loader import load_definitions
from tests.conftest import settings_for
from tests.e2e import services as test_services
from tests.e2e.conftest import Deployment

FLOWS = Path(__file__).parent / "flows"


@pytest.fixture(scope="module", params=["orchestration", "choreography"])
async def deployment(request: pytest.FixtureRequest) -> AsyncIterator[Deployment]:
    """Task services and a conductor beside a tracker (orchestration), or a tracker."""
    mode = request.param
    address = f"memory://{request.module.__name__}.{mode}"
    settings = settings_for(address, mode=mode)
    catalog = Catalog(load_definitions(FLOWS).values())
    await prepare_topics(address, settings, catalog.task_types)
    parts: list[Any] = build_parts(catalog, test_services.services, address, settings, mode)
    if mode == "orchestration":
        parts.append(Tracker(catalog, address, settings))
    parts.append(Gateway(catalog, address, settings))
    tasks = [asyncio.create_task(part.run()) for part in parts]
    try:
        await asyncio.wait_for(asyncio.gather(*(p.ready.wait() for p in parts)), 20)
        async with Client(address, settings) as client:
            yield Deployment(mode, client, catalog, settings, parts)
    finally:
        for part in parts:
            part.stop()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        memory.drop(address)
    crashed = [r for r in results if isinstance(r, BaseException)]
    assert not crashed, crashed


async def records_of(address: str, topic: str, settings: Any) -> list[Any]:
    """Every record of a topic, oldest first per partition."""
    partitions = set(range(settings.partitions))
    return [r async for r in read_partitions(address, topic, partitions, settings.consumer)]


#: the two-gateway kill test (~25-35 s a case) runs each mode once and on each broker
#: once: the gateway's binding and wait code is the same on both brokers, and `make test`
#: has a budget (testcontainers cases, where Docker is present, are kept)
GATEWAY_KILL_CASES = {"embedded-orchestration", "apache-kafka-choreography"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    drop = [
        item
        for item in items
        if item.path.name == "test_gateways.py"
        and item.name.startswith("test_two_gateways_and_a_kill")
        and not item.callspec.id.startswith("testcontainers")
        and item.callspec.id not in GATEWAY_KILL_CASES
    ]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if item not in drop]
