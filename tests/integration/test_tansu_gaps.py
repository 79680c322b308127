"""A live consumer reads every record even while several producers append.

tansu can answer a fetch with records past offsets another producer is still
writing; a plain consumer's position then skips those for good. Podium's
consumers read through `ContiguousReader`, which re-fetches across such gaps.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from podium.runtime.kafka import ContiguousReader, ensure_topics, make_consumer, make_producer

pytestmark = pytest.mark.integration

PRODUCERS, RECORDS = 5, 2_000


async def test_no_record_is_skipped_with_concurrent_producers(kafka: str, unique: str) -> None:
    topic = f"{unique}.gaps"
    await ensure_topics(kafka, [topic], partitions=8)
    consumer = make_consumer(kafka, topic, group_id=None)
    await consumer.start()
    reader = ContiguousReader(consumer)
    try:
        deadline = time.monotonic() + 60
        while not consumer.assignment():
            assert time.monotonic() < deadline, "no assignment"
            await consumer.getmany(timeout_ms=10)  # the assignment comes with the first poll
        await reader.track(consumer.assignment())
        sent = {f"{p}-{i}" for p in range(PRODUCERS) for i in range(RECORDS)}
        seen: set[str] = set()
        producing = asyncio.gather(*(produce(kafka, topic, p) for p in range(PRODUCERS)))
        quiet = 0  # polls in a row that found nothing once every producer was done
        while quiet < 50:
            assert time.monotonic() < deadline, f"{len(seen)} of {len(sent)} seen"
            batch = await reader.getmany(timeout_ms=20)
            seen |= {r.value.decode() for records in batch.values() for r in records if r.value}
            quiet = quiet + 1 if producing.done() and not batch else 0
        await producing
    finally:
        await consumer.stop()
    assert seen == sent


async def produce(kafka: str, topic: str, producer_id: int) -> None:
    producer = make_producer(kafka)
    await producer.start()
    try:
        acks = []
        for i in range(RECORDS):
            value = f"{producer_id}-{i}".encode()
            acks.append(await producer.send(topic, value=value, key=f"k{i % 97}".encode()))
            if i % 7 == 0:
                await asyncio.sleep(0)  # interleave the producers' batches
        await asyncio.gather(*acks)
    finally:
        await producer.stop()
