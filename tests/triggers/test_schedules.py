"""Schedules with an injected clock on the in-memory bus: two gateways, one start per
tick; the owner stops (gracefully, then abruptly) and the other fires on, missing none."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import pytest

from podium.events import topics
from podium.runtime import memory
from podium.triggers.gateway import Gateway
from podium.workflow.catalog import Catalog
from podium.workflow.loader import parse_definition
from podium.workflow.triggers import schedule_id
from tests.conftest import settings_for
from tests.triggers.conftest import records_of

NIGHTLY = parse_definition(
    {
        "name": "every5",
        "triggers": [{"cron": "*/5 * * * *", "timezone": "Europe/Berlin", "input": {"k": 1}}],
        "tasks": [{"id": "a", "type": "test.step"}],
    }
)


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.fixture
async def bus() -> str:
    address = "memory://tests.triggers.schedules"
    yield address  # type: ignore[misc]
    memory.drop(address)


async def starts(address: str, settings: object) -> list[str]:
    records = await records_of(address, topics.TRIGGERS, settings)
    return sorted(r.key.decode() for r in records)


async def settle(address: str, settings: object, wanted: set[str]) -> list[str]:
    for _ in range(100):
        found = await starts(address, settings)
        if wanted <= set(found):
            await asyncio.sleep(0.15)  # anything extra would show by now
            return await starts(address, settings)
        await asyncio.sleep(0.03)
    return await starts(address, settings)


def tick(text: str) -> str:
    return schedule_id("every5", 0, at(text))


async def test_two_gateways_fire_each_tick_once_across_a_stop_and_a_crash(bus: str) -> None:
    settings = settings_for(bus, partitions=4)
    clock = Clock(at("2026-03-29T00:58:00+00:00"))
    catalog = Catalog([NIGHTLY])
    gateways = [Gateway(catalog, bus, settings, clock=clock) for _ in range(2)]
    tasks = [asyncio.create_task(g.run()) for g in gateways]
    try:
        await asyncio.wait_for(asyncio.gather(*(g.ready.wait() for g in gateways)), 20)
        expected: list[str] = []
        # 01:00 UTC is 03:00 in Berlin, right after the spring-forward gap
        for text in ("2026-03-29T01:00:00+00:00", "2026-03-29T01:05:00+00:00"):
            clock.now = at(text) + 1
            expected.append(tick(text))
            assert await settle(bus, settings, set(expected)) == sorted(expected)
        owner = next(i for i, g in enumerate(gateways) if g.scheduler._next)
        gateways[owner].stop()  # graceful: the other restores from the changelog
        await tasks[owner]
        clock.now = at("2026-03-29T01:10:00+00:00") + 20
        expected.append(tick("2026-03-29T01:10:00+00:00"))
        found = await settle(bus, settings, set(expected))
        assert sorted(set(found)) == sorted(expected)
        survivor = gateways[1 - owner]
        # a new gateway joins, then the one that owns the schedule dies abruptly
        gateways.append(Gateway(catalog, bus, settings, clock=clock))
        tasks.append(asyncio.create_task(gateways[-1].run()))
        await asyncio.wait_for(gateways[-1].ready.wait(), 20)
        await asyncio.sleep(0.3)
        crashed = survivor if survivor.scheduler._next else gateways[-1]
        index = gateways.index(crashed)
        tasks[index].cancel()  # no drain, no last seal
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[index]
        clock.now = at("2026-03-29T01:15:00+00:00") + 5
        expected.append(tick("2026-03-29T01:15:00+00:00"))
        found = await settle(bus, settings, set(expected))
        assert sorted(set(found)) == sorted(expected)  # every tick started, none extra
    finally:
        for gateway in gateways:
            gateway.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
