"""State changelogs: one record per changed key, restored on partition assignment.

The Kafka Streams model: a stateful consumer keeps its state in memory per owned
input partition and writes every change, keyed, to a co-partitioned changelog
topic before committing its input offsets. Whoever is assigned the partition
next reads the changelog partition from the beginning to rebuild the state.

tansu's `end_offsets()` can be wrong after batched produces, so restore reads
until the consumer's position reaches its `highwater()` (which is right), as
seen by an actual fetch.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiokafka import ConsumerRecord, TopicPartition

from podium.kafka import make_consumer
from podium.settings import ConsumerSettings

log = logging.getLogger("podium.changelog")


async def read_partitions(
    bootstrap_servers: str,
    topic: str,
    partitions: set[int],
    settings: ConsumerSettings | None = None,
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Yield every record of the given changelog partitions, oldest first, then stop."""
    if not partitions:
        return
    consumer = make_consumer(bootstrap_servers, group_id=None, settings=settings)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = set(tps)
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=200, max_records=10_000)
            for records in batch.values():
                for record in records:
                    yield record
            for tp in list(remaining):
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
