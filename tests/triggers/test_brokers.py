"""Wait tasks on every transport (the in-memory bus, tansu, Apache Kafka), in both
modes: a signal record from a plain producer releases a waiting task, and a wait
whose workflow ended (cancelled, timed out) is dropped by the gateway rather than
kept forever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from podium.client import Client, prepare_topics
from podium.conductor.conductor import Tracker
from podium.oneshot import build_parts
from podium.runtime.kafka import make_producer
from podium.triggers.gateway import Gateway
from podium.triggers.waits import WaitParticipant, WaitWorker, Watch, Watcher
from podium.workflow.catalog import Catalog
from podium.workflow.loader import load_definitions
from tests.conftest import settings_for
from tests.e2e import services as test_services
from tests.e2e.conftest import Deployment
from tests.triggers.conftest import FLOWS
from tests.triggers.test_waits import TOPIC, until


@pytest.fixture(scope="module", params=["orchestration", "choreography"])
async def deployment(transport: str, request: pytest.FixtureRequest) -> AsyncIterator[Deployment]:
    mode = request.param
    settings = settings_for(transport, mode=mode)
    catalog = Catalog(load_definitions(FLOWS).values())
    await prepare_topics(transport, settings, catalog.task_types)
    parts: list[Any] = build_parts(catalog, test_services.services, transport, settings, mode)
    if mode == "orchestration":
        parts.append(Tracker(catalog, transport, settings))
    parts.append(Gateway(catalog, transport, settings))
    tasks = [asyncio.create_task(part.run()) for part in parts]
    try:
        await asyncio.wait_for(asyncio.gather(*(p.ready.wait() for p in parts)), 60)
        async with Client(transport, settings) as client:
            yield Deployment(mode, client, catalog, settings, parts)
    finally:
        for part in parts:
            part.stop()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    crashed = [r for r in results if isinstance(r, BaseException)]
    assert not crashed, crashed


def gateway_of(deployment: Deployment) -> Gateway:
    return next(p for p in deployment.parts if isinstance(p, Gateway))


def watch_of(deployment: Deployment) -> Watch:
    return next(p for p in gateway_of(deployment).waits if isinstance(p, Watcher)).watch


def held(deployment: Deployment, workflow_id: str) -> bool:
    """Whether the gateway holds a wait of that workflow (its state or its watch)."""
    for part in gateway_of(deployment).waits:
        if isinstance(part, WaitWorker) and any(
            k.startswith(f"{workflow_id}/") for k in part.waits
        ):
            return True
        if isinstance(part, WaitParticipant) and any(
            k.startswith(f"{workflow_id}/") for k in part._waits
        ):
            return True
    watching = watch_of(deployment)._waiting.get(TOPIC, {})
    return any(w.workflow_id == workflow_id for w in watching.values())


def waiting(deployment: Deployment, workflow_id: str) -> bool:
    watching = watch_of(deployment)._waiting.get(TOPIC, {})
    return any(w.workflow_id == workflow_id for w in watching.values())


async def signal(bootstrap: str, order: str, ok: bool) -> None:
    """The outside world's record: plain JSON from a plain producer."""
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        await (await producer.send(TOPIC, value=orjson.dumps({"order": order, "ok": ok})))
    finally:
        await producer.stop()


def order_of(deployment: Deployment, request: pytest.FixtureRequest) -> str:
    # unique per broker, mode and test: the broker outlives the module
    return f"{deployment.client.bootstrap_servers}-{request.node.name}"


async def test_a_signal_record_releases_a_waiting_task(
    deployment: Deployment, request: pytest.FixtureRequest
) -> None:
    order = order_of(deployment, request)
    wid = await deployment.start("held", {"order": order})
    await until(lambda: waiting(deployment, wid), timeout=30)
    await signal(deployment.client.bootstrap_servers, f"{order}-other", ok=False)
    await signal(deployment.client.bootstrap_servers, order, ok=True)
    ended = await deployment.wait(wid, timeout=30)
    assert (ended.state, ended.output) == ("Succeeded", {"approved": True}), ended
    assert not held(deployment, wid)


async def test_a_cancelled_workflow_leaves_no_wait(
    deployment: Deployment, request: pytest.FixtureRequest
) -> None:
    order = order_of(deployment, request)
    wid = await deployment.start("held", {"order": order})
    await until(lambda: waiting(deployment, wid), timeout=30)
    await deployment.client.cancel(wid, "held", 1, reason="the customer changed their mind")
    ended = await deployment.wait(wid, timeout=30)
    assert ended.state == "Cancelled", ended
    await until(lambda: not held(deployment, wid), timeout=30)
    # a signal for it now releases nothing and ends nothing again
    await signal(deployment.client.bootstrap_servers, order, ok=True)


async def test_a_timed_out_workflow_leaves_no_wait(
    deployment: Deployment, request: pytest.FixtureRequest
) -> None:
    """The wait has no timeout of its own: only the workflow's end can drop it."""
    order = order_of(deployment, request)
    wid = await deployment.start("stalled", {"order": order})
    await until(lambda: waiting(deployment, wid), timeout=30)
    ended = await deployment.wait(wid, timeout=30)
    assert ended.state == "TimedOut", ended
    await until(lambda: not held(deployment, wid), timeout=30)
