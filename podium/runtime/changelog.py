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
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from aiokafka import ConsumerRecord, TopicPartition

from podium.events import CloudEvent, DecodeError, decode
from podium.runtime.kafka import PARKED_FETCH_WAIT_MS, make_consumer, raw_record
from podium.runtime.settings import ConsumerSettings

log = logging.getLogger("podium.changelog")

T = TypeVar("T")


async def read_partitions(
    bootstrap_servers: str,
    topic: str,
    partitions: set[int],
    settings: ConsumerSettings | None = None,
    *,
    last: int | None = None,
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Yield every record of the given partitions, oldest first, then stop.

    With `last`, only about the last `last` records of each partition (tansu's end
    offsets can be low after batched produces: then a few more are read).
    """
    if not partitions:
        return
    # a bulk read that ends on an empty fetch at the end: short waits, on every broker
    consumer = make_consumer(
        bootstrap_servers,
        group_id=None,
        settings=settings,
        fetch_max_wait_ms=PARKED_FETCH_WAIT_MS,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        if last is not None:
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                start = max(await consumer.position(tp), ends[tp] - last)
                consumer.seek(tp, start)
        remaining = set(tps)
        while True:
            # the high watermark is known once a fetch has seen the partition (at once on
            # the in-memory bus); tansu's end offsets are not to be trusted for this
            for tp in list(remaining):
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    remaining.discard(tp)
            if not remaining:
                break
            batch = await consumer.getmany(*remaining, timeout_ms=200, max_records=10_000)
            for records in batch.values():
                for record in records:
                    yield record
    finally:
        await consumer.stop()


async def read_events(
    bootstrap_servers: str,
    topic: str,
    partitions: set[int],
    settings: ConsumerSettings | None = None,
    *,
    last: int | None = None,
) -> AsyncIterator[CloudEvent]:
    """The decodable events of those partitions (see `read_partitions`); what cannot be
    decoded is skipped: the topic's own consumers dead-letter it."""
    async for record in read_partitions(bootstrap_servers, topic, partitions, settings, last=last):
        try:
            yield decode(raw_record(record))
        except DecodeError:
            continue


async def restore(
    bootstrap_servers: str,
    topic: str,
    partitions: set[int],
    parse: Callable[[bytes], T],
    settings: ConsumerSettings | None = None,
) -> dict[str, tuple[int, T]]:
    """The latest snapshot of every key of those changelog partitions, parsed.

    An unreadable snapshot (or one without a UTF-8 key) is logged and skipped: the
    key's earlier snapshot, if any, stands (a changelog is append-only; the last
    readable one wins).
    """
    restored: dict[str, tuple[int, T]] = {}
    async for record in read_partitions(bootstrap_servers, topic, partitions, settings):
        try:
            key = None if record.key is None else record.key.decode()
        except UnicodeDecodeError:
            key = None
        if key is None:
            log.error("a snapshot without a UTF-8 key in %s[%d]@%d", *_at(record))
            continue
        if record.value is None:  # a tombstone: the key was deleted
            restored.pop(key, None)
            continue
        try:
            restored[key] = (record.partition, parse(record.value))
        except Exception as exc:  # whatever junk a parser trips on must not stop a restore
            log.error("unreadable snapshot in %s[%d]@%d: %r", *_at(record), exc)
    return restored


def _at(record: ConsumerRecord[bytes, bytes]) -> tuple[str, int, int]:
    return record.topic, record.partition, record.offset
