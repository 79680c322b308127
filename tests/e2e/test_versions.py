"""A new version deployed while the old one's workflows are in flight (both modes, memory).

v1 runs `a` (slow) then `b`; v2 runs `a` then `c`. Workflows start on a deployment
that knows only v1; while their `a` runs, every part is stopped and started again
with a catalog holding both versions (a rolling deploy of the definitions). The v1
workflows finish on v1's tasks; triggers for the latest version start v2.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from podium.client import Client, prepare_topics
from podium.conductor.conductor import Tracker
from podium.oneshot import build_parts
from podium.runtime import memory
from podium.workflow.catalog import Catalog
from podium.workflow.definition import Definition
from podium.workflow.loader import parse_definition
from tests.conftest import settings_for
from tests.e2e import services as test_services


def version(number: int, last: str) -> Definition:
    return parse_definition(
        {
            "name": "versioned",
            "version": number,
            "tasks": [
                {"id": "a", "type": "test.step", "input": {"sleep": 0.5, "echo": number}},
                {"id": last, "type": "test.step", "depends_on": ["a"], "input": {"echo": last}},
            ],
            "output": {"v": "${ tasks.a.output.echo }", "last": f"${{ tasks.{last}.output.echo }}"},
        }
    )


V1, V2 = version(1, "b"), version(2, "c")


async def _start(catalog: Catalog, address: str, settings: Any, mode: str) -> list[Any]:
    parts: list[Any] = build_parts(catalog, test_services.services, address, settings, mode)
    if mode == "orchestration":
        parts.append(Tracker(catalog, address, settings))
    tasks = [asyncio.create_task(part.run()) for part in parts]
    await asyncio.wait_for(asyncio.gather(*(p.ready.wait() for p in parts)), 20)
    return [parts, tasks]


async def _stop(running: list[Any]) -> None:
    parts, tasks = running
    for part in parts:
        part.stop()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)]


@pytest.mark.parametrize("mode", ["orchestration", "choreography"])
async def test_in_flight_workflows_finish_on_their_version_after_a_new_one_is_deployed(
    mode: str,
) -> None:
    address = f"memory://{__name__}.{mode}"
    settings = settings_for(address, mode=mode)
    old, both = Catalog([V1]), Catalog([V1, V2])
    await prepare_topics(address, settings, both.task_types)
    running = await _start(old, address, settings, mode)
    try:
        async with Client(address, settings) as client:
            first = [await client.trigger(old.get("versioned"), {}, mode=mode) for _ in range(5)]
            ends = [asyncio.ensure_future(client.expect(w)) for w in first]
            await asyncio.sleep(0.2)  # every `a` of v1 is running
            await _stop(running)
            assert not any(end.done() for end in ends)
            running = await _start(both, address, settings, mode)
            later = [await client.trigger(both.get("versioned"), {}, mode=mode) for _ in range(5)]
            for end in await asyncio.wait_for(asyncio.gather(*ends), 20):
                assert (end.state, end.version, set(end.tasks)) == ("Succeeded", 1, {"a", "b"})
                assert end.output == {"v": 1, "last": "b"}
            for workflow_id in later:
                end = await asyncio.wait_for(client.expect(workflow_id), 20)
                assert (end.state, end.version, set(end.tasks)) == ("Succeeded", 2, {"a", "c"})
                assert end.output == {"v": 2, "last": "c"}
    finally:
        await _stop(running)
        memory.drop(address)
