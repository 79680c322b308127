"""A running deployment (task services and conductor) shared by a test module."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from podium.client import Client, Ended, prepare_topics
from podium.conductor import conductor as conductor_module
from podium.conductor.conductor import Tracker
from podium.oneshot import build_parts
from podium.runtime.settings import Settings
from podium.services import participant as participant_module
from podium.workflow.catalog import Catalog
from podium.workflow.loader import load_definitions
from podium.workflow.machine import WorkflowState
from podium.workflow.states import TERMINAL
from tests.conftest import settings_for
from tests.e2e import random_dags
from tests.e2e import services as test_services

FLOWS = Path(__file__).parent / "flows"
RANDOM_DAGS = random_dags.generate(seed=2026, count=12)


@dataclass
class Deployment:
    mode: str
    client: Client
    catalog: Catalog
    settings: Settings
    parts: list[Any]

    async def start(self, name: str, input: dict[str, Any]) -> str:
        return await self.client.trigger(self.catalog.get(name), input, mode=self.mode)

    async def wait(self, workflow_id: str, timeout: float = 20) -> Ended:
        return await asyncio.wait_for(self.client.expect(workflow_id), timeout)

    async def run(self, name: str, input: dict[str, Any], timeout: float = 20) -> Ended:
        return await self.wait(await self.start(name, input), timeout)


#: workflow id -> an event set once the tracker has seen it end
TRACKED: dict[str, asyncio.Event] = {}


def _notify(state: WorkflowState) -> None:
    if state.status in TERMINAL:
        TRACKED.setdefault(state.workflow_id, asyncio.Event()).set()


async def tracked_end(workflow_id: str, timeout: float = 20) -> None:
    await asyncio.wait_for(TRACKED.setdefault(workflow_id, asyncio.Event()).wait(), timeout)


@pytest.fixture(scope="module")
def kafka(transport: str) -> str:
    """Whole deployments run on the in-memory bus and on every real broker."""
    return transport


@pytest.fixture(scope="module", params=["orchestration", "choreography", "choreography-cold"])
async def deployment(kafka: str, request: pytest.FixtureRequest) -> AsyncIterator[Deployment]:
    """Task services and a conductor (orchestration) or a tracker (choreography).

    `choreography-cold`, on the in-memory bus: every participant keeps one join decoded
    and the tracker one state (`HOT_JOINS`, `HOT_STATES`), so the others wait as JSON and
    come back at every step."""
    mode, _, cold = request.param.partition("-")
    if cold and not kafka.startswith("memory://"):
        pytest.skip("spilling is the processors' business: the in-memory bus shows it")
    settings = settings_for(kafka)
    catalog = Catalog([*load_definitions(FLOWS).values(), *RANDOM_DAGS])
    await prepare_topics(kafka, settings, catalog.task_types)
    with pytest.MonkeyPatch.context() as patch:  # read when the parts are built
        if cold:
            patch.setattr(participant_module, "HOT_JOINS", 1)
            patch.setattr(conductor_module, "HOT_STATES", 1)
        parts = build_parts(catalog, test_services.services, kafka, settings, mode)
    if mode == "orchestration":  # a tracker watching beside the conductor, as deployed
        parts.append(Tracker(catalog, kafka, settings, on_state=_notify))
    tasks = [asyncio.create_task(part.run()) for part in parts]
    try:
        await asyncio.wait_for(asyncio.gather(*(p.ready.wait() for p in parts)), 60)
        async with Client(kafka, settings) as client:
            yield Deployment(mode, client, catalog, settings, parts)
    finally:
        for part in parts:
            part.stop()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    crashed = [r for r in results if isinstance(r, BaseException)]
    assert not crashed, crashed
