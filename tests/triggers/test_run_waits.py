"""`podium run` (run_once) of a definition with a wait task: the gateway's wait part
runs beside the run's own components, in the run's mode."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import orjson
import pytest
from aiokafka.errors import KafkaError

from podium.events import Mode
from podium.oneshot import run_once
from podium.runtime import memory
from podium.runtime.kafka import make_producer
from podium.runtime.settings import Settings
from podium.workflow.loader import load_definition
from tests.triggers.conftest import FLOWS


async def approving(address: str, order: str) -> None:
    """Approve the order again and again: the run's watcher reads from its start."""
    producer = make_producer(address)
    await producer.start()
    try:
        while True:
            value = orjson.dumps({"order": order, "ok": True})
            with contextlib.suppress(KafkaError):  # the run creates the topic
                await (await producer.send("shop.approvals", value=value, key=b"clerk"))
            await asyncio.sleep(0.1)
    finally:
        await producer.stop()


@pytest.mark.parametrize("mode", list(Mode))
async def test_a_run_with_a_wait_task_is_released_by_a_record(mode: Mode) -> None:
    address = f"memory://{uuid.uuid4().hex}"
    approvals = asyncio.create_task(approving(address, "run-1"))
    try:
        _, ended = await run_once(
            load_definition(FLOWS / "held.yaml"),
            [],
            {"order": "run-1"},
            bootstrap_servers=address,
            settings=Settings(bootstrap_servers=address),
            mode=mode,
            timeout=20,
        )
    finally:
        approvals.cancel()
        await asyncio.gather(approvals, return_exceptions=True)
        memory.drop(address)
    assert ended.state == "Succeeded", ended
    assert ended.output == {"approved": True}
