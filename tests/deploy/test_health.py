"""Readiness and liveness (`podium.health`): a restarted conductor is ready only once the
state it had is restored, and the probe says so."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from podium import health
from podium.client import Client, prepare_topics
from podium.conductor.conductor import Conductor
from podium.workflow.catalog import Catalog
from podium.workflow.loader import load_definitions
from tests.conftest import settings_for

ORDER = Path(__file__).resolve().parents[2] / "examples" / "order"


async def test_a_restarted_conductor_is_ready_only_once_its_state_is_restored() -> None:
    address = f"memory://health-{uuid.uuid4().hex[:8]}"
    settings = settings_for(address)
    catalog = Catalog(load_definitions(ORDER))
    await prepare_topics(address, settings, catalog.task_types)

    # a first conductor starts a workflow no service runs: it stays Running, in the changelog
    first = Conductor(catalog, address, settings)
    running = asyncio.create_task(first.run())
    await asyncio.wait_for(first.ready.wait(), 10)
    async with Client(address, settings) as client:
        wid = await client.trigger(catalog.get("order"), {"sku": "A-1", "qty": 1, "amount": 5})
    for _ in range(200):
        if first.state_of(wid) is not None:
            break
        await asyncio.sleep(0.01)
    first.stop()
    await asyncio.wait_for(running, 10)

    # the next one has that state to restore; every answer of /ready is checked against it
    second = Conductor(catalog, address, settings)
    answers: list[tuple[bool, bool]] = []

    def ready() -> bool:
        answers.append((second.ready.is_set(), second.state_of(wid) is not None))
        return second.ready.is_set()

    status = health.Health(ready)
    server = await health.serve(status, 0)
    port = server.sockets[0].getsockname()[1]
    ask = asyncio.to_thread
    try:
        assert await ask(health.probe, "live", port) == (True, "live")
        assert await ask(health.probe, "ready", port) == (False, "not ready")
        running = asyncio.create_task(second.run())
        for _ in range(500):
            if (await ask(health.probe, "ready", port))[0]:
                break
        assert await ask(health.probe, "ready", port) == (True, "ready")
        assert second.state_of(wid) is not None
        # never ready without the state: each answer is read with the state at that moment
        assert all(restored for is_ready, restored in answers if is_ready)
        status.draining = True  # SIGTERM: not ready any more while it drains, still live
        assert await ask(health.probe, "ready", port) == (False, "draining")
        assert (await ask(health.probe, "live", port))[0]
    finally:
        second.stop()
        await asyncio.wait_for(running, 10)
        server.close()
    assert (await ask(health.probe, "live", port))[0] is False
