"""Event bindings end to end on the in-memory bus, in both modes: a foreign producer's
plain JSON and CloudEvent records start the right workflows, once each."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from podium.events import topics
from podium.runtime.kafka import make_producer
from podium.triggers.gateway import Gateway
from tests.e2e import services as test_services
from tests.e2e.conftest import Deployment
from tests.triggers.conftest import records_of


def gateway(deployment: Deployment) -> Gateway:
    return next(p for p in deployment.parts if isinstance(p, Gateway))


async def send(address: str, value: Any, headers: list[tuple[str, bytes]] | None = None) -> None:
    producer = make_producer(address)
    await producer.start()
    body = value if isinstance(value, bytes) else orjson.dumps(value)
    await (await producer.send("shop.orders", value=body, key=b"shop", headers=headers or []))
    await producer.stop()


def order(order_id: int, total: float = 12.5, sku: Any = "sku-1") -> dict[str, Any]:
    return {"order_id": order_id, "total": total, "sku": sku}


async def test_records_start_workflows_filtered_and_bad_ones_do_not(deployment: Deployment) -> None:
    address = deployment.client.bootstrap_servers
    base = 100 if deployment.mode == "orchestration" else 200
    plain, cloud, filtered, bad = (f"order-{base + n}" for n in range(4))
    for wid in (plain, cloud):
        deployment.client.expect(wid)
    await send(address, order(base))  # plain JSON, no headers
    cloudevent = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"evt-1"),
        ("ce_source", b"shop"),
        ("ce_type", b"order.created"),
        ("content-type", b"application/json"),
    ]
    await send(address, order(base + 1, sku="sku-2"), cloudevent)
    await send(address, order(base + 2, total=0))  # filtered out
    await send(address, order(base + 3, sku=7))  # fails input_schema: dead-lettered
    await send(address, b"not json at all")  # the filter cannot evaluate: dead-lettered
    assert (await deployment.wait(plain)).output == {"sku": "sku-1"}
    assert (await deployment.wait(cloud)).output == {"sku": "sku-2"}
    counts = gateway(deployment).binder.counts["ordered#0"]  # type: ignore[union-attr]
    for _ in range(50):
        if counts["dead_lettered"] >= 2:
            break
        await asyncio.sleep(0.02)
    assert counts["filtered"] >= 1
    dead = [
        dict(r.headers)
        for r in await records_of(address, topics.DEAD_LETTER, deployment.settings)
        if dict(r.headers).get("podium_dlq_topic") == b"shop.orders"
    ]
    reasons = [h["podium_dlq_reason"].decode() for h in dead]
    assert any("input rejected for ordered: sku: 7 is not of type 'string'" in r for r in reasons)
    assert any("binding ordered#0 (shop.orders)" in r for r in reasons)
    started = {
        r.key
        for r in await records_of(address, topics.WORKFLOWS, deployment.settings)
        if dict(r.headers).get("ce_type") == b"podium.workflow.started"
    }
    assert filtered.encode() not in started and bad.encode() not in started


async def test_the_same_order_three_times_starts_one_workflow(deployment: Deployment) -> None:
    address = deployment.client.bootstrap_servers
    wid = f"order-{300 if deployment.mode == 'orchestration' else 400}"
    deployment.client.expect(wid)
    for _ in range(3):
        await send(address, order(int(wid.split("-")[1]), sku="once"))
    assert (await deployment.wait(wid)).state == "Succeeded"
    await asyncio.sleep(0.2)
    runs = [c for c in test_services.CALLS if c[0] == wid and c[1] == "take"]
    assert len(runs) == 1
