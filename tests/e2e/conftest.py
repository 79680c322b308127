"""A running deployment (task services and conductor) shared by a test module."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conductor.conductor import Conductor
from podium.client import Client, Ended, prepare_topics
from podium.settings import Settings
from services.worker import Worker
from tests.e2e import services as test_services
from workflow.catalog import Catalog
from workflow.loader import load_definitions

FLOWS = Path(__file__).parent / "flows"


@dataclass
class Deployment:
    client: Client
    catalog: Catalog
    settings: Settings

    async def start(self, name: str, input: dict[str, Any]) -> str:
        return await self.client.trigger(self.catalog.get(name), input)

    async def wait(self, workflow_id: str, timeout: float = 20) -> Ended:
        return await asyncio.wait_for(self.client.expect(workflow_id), timeout)

    async def run(self, name: str, input: dict[str, Any], timeout: float = 20) -> Ended:
        return await self.wait(await self.start(name, input), timeout)


@pytest.fixture(scope="module")
async def deployment(kafka: str) -> AsyncIterator[Deployment]:
    settings = Settings(bootstrap_servers=kafka)
    catalog = Catalog(load_definitions(FLOWS))
    await prepare_topics(kafka, settings, catalog.task_types)
    parts: list[Any] = [Worker(s, kafka, settings) for s in test_services.services]
    parts.append(Conductor(catalog, kafka, settings))
    tasks = [asyncio.create_task(part.run()) for part in parts]
    try:
        await asyncio.wait_for(asyncio.gather(*(p.ready.wait() for p in parts)), 60)
        async with Client(kafka, settings) as client:
            yield Deployment(client, catalog, settings)
    finally:
        for part in parts:
            part.stop()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    crashed = [r for r in results if isinstance(r, BaseException)]
    assert not crashed, crashed
