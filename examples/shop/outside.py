"""The outside world of the triggered order saga, with nothing but aiokafka.

It publishes orders on `shop.orders` and approvals on `shop.approvals` (plain
JSON, no CloudEvent, no Podium), then reads what the deployment publishes back:
each order's result on `shop.order_results` and each shipment on `shop.shipments`
(CloudEvents in binary mode: `ce_*` headers, the result object as the value).

    python -m examples.shop.outside --bootstrap-servers localhost:9092 --tag demo

with a deployment running (`podium triggers`, the services, a conductor or a
tracker, all with `--definitions examples/shop`). `--tag` makes the order ids
unique, so it can run again on the same broker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

#: seconds to wait for what the deployment publishes back
WITHIN_S = 30.0


def orders(tag: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(order, approval) pairs: one approved, one refused."""
    return [
        (
            {"order_id": f"{tag}-1", "sku": "A-1", "qty": 2, "total": 30},
            {"order_id": f"{tag}-1", "approved": True, "by": "alice"},
        ),
        (
            {"order_id": f"{tag}-2", "sku": "B-7", "qty": 1, "total": 99},
            {"order_id": f"{tag}-2", "approved": False, "by": "bob"},
        ),
    ]


async def publish(producer: AIOKafkaProducer, topic: str, value: dict[str, Any]) -> None:
    print(f"  -> {topic}: {orjson.dumps(value).decode()}", flush=True)
    await producer.send_and_wait(topic, orjson.dumps(value))


async def collect(bootstrap: str, wanted: dict[str, set[str]]) -> dict[str, dict[str, Any]]:
    """The value of each wanted key on each topic, read from the topics' beginning."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5
    )
    await consumer.start()
    found: dict[str, dict[str, Any]] = {}
    try:
        partitions = []
        known = await consumer.topics()
        for topic in wanted:
            if topic not in known:  # the conductor or tracker creates it as it starts
                raise LookupError(f"no topic {topic}: is the deployment running?")
            numbers = consumer.partitions_for_topic(topic) or set()
            partitions += [TopicPartition(topic, n) for n in numbers]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        missing = {(topic, key) for topic, keys in wanted.items() for key in keys}
        while missing:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    key = (record.topic, (record.key or b"").decode())
                    if key in missing:
                        missing.discard(key)
                        found[f"{key[0]} {key[1]}"] = orjson.loads(record.value or b"null")
    finally:
        await consumer.stop()
    return found


async def main(bootstrap: str, tag: str) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        pairs = orders(tag)
        for order, _ in pairs:
            await publish(producer, "shop.orders", order)
        # the same order again: its id is the workflow id, so it starts nothing new
        await publish(producer, "shop.orders", pairs[0][0])
        for _, approval in pairs:
            await publish(producer, "shop.approvals", approval)
    finally:
        await producer.stop()
    ids = [f"order-{order['order_id']}" for order, _ in pairs]
    wanted = {"shop.order_results": set(ids), "shop.shipments": {f"{ids[0]}:on_complete:0"}}
    try:
        found = await asyncio.wait_for(collect(bootstrap, wanted), WITHIN_S)
    except TimeoutError:
        print(f"  nothing came back within {WITHIN_S:.0f}s", file=sys.stderr)
        return 1
    for where, result in sorted(found.items()):
        summary = {k: result.get(k) for k in ("workflow", "mode", "state", "output", "error")}
        summary = {k: v for k, v in summary.items() if v is not None}
        print(f"  <- {where}: {orjson.dumps(summary).decode()}", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bootstrap-servers", default=os.environ.get("PODIUM_BOOTSTRAP_SERVERS", "")
    )
    parser.add_argument("--tag", default="demo", help="makes the order ids unique")
    arguments = parser.parse_args()
    if not arguments.bootstrap_servers:
        parser.error("--bootstrap-servers (or PODIUM_BOOTSTRAP_SERVERS) is required")
    sys.exit(asyncio.run(main(arguments.bootstrap_servers, arguments.tag)))
