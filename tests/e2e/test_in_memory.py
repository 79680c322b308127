"""Whole workflows on the in-memory bus: what users run their own workflow tests on."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from examples.etl import pipeline
from examples.order.shop import services
from podium.client import prepare_topics
from podium.events import Mode
from podium.oneshot import build_parts, run_once
from podium.runtime import memory
from podium.runtime.settings import Settings
from podium.workflow.catalog import Catalog
from podium.workflow.loader import load_definition

ORDER = load_definition(Path(__file__).parents[2] / "examples" / "order" / "order.yaml")


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize(
    ("amount", "state", "tasks"),
    [
        (30, "Succeeded", {"reserve": "Succeeded", "charge": "Succeeded", "ship": "Succeeded"}),
        (5000, "Compensated", {"reserve": "Succeeded", "charge": "Failed", "ship": "Pending"}),
    ],
)
async def test_the_order_saga_runs_on_the_in_memory_bus(
    mode: Mode, amount: int, state: str, tasks: dict[str, str]
) -> None:
    address = f"memory://{uuid.uuid4().hex}"
    try:
        _, ended = await run_once(
            ORDER,
            services,
            {"sku": "A-1", "qty": 2, "amount": amount},
            bootstrap_servers=address,
            settings=Settings(bootstrap_servers=address),
            mode=mode,
            timeout=30,
        )
    finally:
        memory.drop(address)
    assert ended.state == state
    assert ended.mode == mode
    assert {task_id: task.state for task_id, task in ended.tasks.items()} == tasks


@pytest.mark.parametrize("mode", list(Mode))
async def test_a_run_beside_a_deployment_that_cannot_run_its_workflow_is_answered_by_its_own(
    mode: Mode,
) -> None:
    """The live deployment refuses the run's trigger (an unknown workflow to it) without
    answering for it: the run's own conductor or tracker does."""
    address = f"memory://{uuid.uuid4().hex}"
    settings = Settings(bootstrap_servers=address)
    etl = Catalog([load_definition(Path(__file__).parents[2] / "examples" / "etl" / "etl.yaml")])
    await prepare_topics(address, settings, etl.task_types)
    live = build_parts(etl, pipeline.services, address, settings, mode)
    running = [asyncio.create_task(part.run()) for part in live]
    try:
        await asyncio.wait_for(asyncio.gather(*(part.ready.wait() for part in live)), 30)
        _, ended = await run_once(
            ORDER,
            services,
            {"sku": "A-1", "qty": 2, "amount": 30},
            bootstrap_servers=address,
            settings=settings,
            mode=mode,
            timeout=30,
        )
    finally:
        for part in live:
            part.stop()
        await asyncio.gather(*running, return_exceptions=True)
        memory.drop(address)
    assert ended.state == "Succeeded"
