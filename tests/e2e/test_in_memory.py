"""Whole workflows on the in-memory bus: what users run their own workflow tests on."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from examples.order.shop import services
from podium.events import Mode
from podium.oneshot import run_once
from podium.runtime import memory
from podium.runtime.settings import Settings
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
