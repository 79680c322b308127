"""Wait tasks on the in-memory bus, in both modes: the gateway releases a waiting task
with a matching record (one that came early too), ignores the others, and the task's
timeout and retry apply as to any task."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from podium.runtime.kafka import make_producer
from podium.triggers.gateway import Gateway
from podium.triggers.waits import Watch, Watcher
from tests.e2e.conftest import Deployment

TOPIC = "shop.approvals"


def watch_of(deployment: Deployment) -> Watch:
    gateway = next(p for p in deployment.parts if isinstance(p, Gateway))
    return next(p for p in gateway.waits if isinstance(p, Watcher)).watch


async def approve(address: str, order: str, ok: bool = True) -> None:
    producer = make_producer(address)
    await producer.start()
    value = orjson.dumps({"order": order, "ok": ok})
    await (await producer.send(TOPIC, value=value, key=b"clerk"))
    await producer.stop()


async def until(condition: Any, timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def waiting(watch: Watch, workflow_id: str) -> bool:
    return any(w.workflow_id == workflow_id for w in watch._waiting.get(TOPIC, {}).values())


async def test_a_matching_record_releases_the_task_and_others_are_ignored(
    deployment: Deployment,
) -> None:
    address = deployment.client.bootstrap_servers
    order = f"{deployment.mode}-late"
    wid = await deployment.start("approval", {"order": order})
    await until(lambda: waiting(watch_of(deployment), wid))
    await approve(address, "someone-else")  # another order's: ignored
    await approve(address, order, ok=True)
    ended = await deployment.wait(wid)
    assert ended.state == "Succeeded", ended
    assert ended.output == {"approved": {"ok": True, "by": "clerk"}}
    assert ended.tasks["approve"].attempts == 1


async def test_a_record_that_came_before_the_task_ran_releases_it(deployment: Deployment) -> None:
    address = deployment.client.bootstrap_servers
    order = f"{deployment.mode}-early"
    watch = watch_of(deployment)
    kept = watch.kept(TOPIC)
    await approve(address, order, ok=False)
    await until(lambda: watch.kept(TOPIC) > kept)
    ended = await deployment.run("approval", {"order": order})
    assert ended.state == "Succeeded", ended
    assert ended.output == {"approved": {"ok": False, "by": "clerk"}}
    assert ended.tasks["approve"].attempts == 1


async def test_a_timed_out_attempt_is_retried_and_the_next_one_released(
    deployment: Deployment,
) -> None:
    address = deployment.client.bootstrap_servers
    order = f"{deployment.mode}-slow"
    wid = await deployment.start("approval", {"order": order})
    watch = watch_of(deployment)
    await until(lambda: waiting(watch, wid))
    first = next(w for w in watch._waiting[TOPIC].values() if w.workflow_id == wid)
    # attempt 1 times out after 1 s; attempt 2 waits
    await until(
        lambda: any(
            w.workflow_id == wid and w.command.attempt == 2
            for w in watch._waiting.get(TOPIC, {}).values()
        )
    )
    assert first.command.attempt == 1
    await approve(address, order)
    ended = await deployment.wait(wid)
    assert ended.state == "Succeeded", ended
    assert ended.tasks["approve"].attempts == 2


async def test_a_waiting_task_outlives_a_gateway_restart(deployment: Deployment) -> None:
    """Last in the module: the deployment's gateway is replaced by a new one."""
    address = deployment.client.bootstrap_servers
    order = f"{deployment.mode}-restart"
    wid = await deployment.start("held", {"order": order})
    await until(lambda: waiting(watch_of(deployment), wid))
    old = next(p for p in deployment.parts if isinstance(p, Gateway))
    old.stop()
    await asyncio.sleep(0.5)  # its loops leave their groups (the fixture awaits its task)
    await approve(address, order)  # while no gateway runs
    new = Gateway(deployment.catalog, address, deployment.settings)
    deployment.parts[deployment.parts.index(old)] = new
    running = asyncio.create_task(new.run())
    try:
        ended = await deployment.wait(wid)
        assert ended.state == "Succeeded", ended
        assert ended.output == {"approved": True}
    finally:
        new.stop()
        await running
