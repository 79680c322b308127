"""The Kafka client contract Podium relies on, the same cases on every transport.

The in-memory bus (`podium.runtime.memory`) claims to keep what tansu and Apache
Kafka keep for Podium's clients: these cases are that claim, run on each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner

from podium.runtime.kafka import Consumer, Record, ensure_topics, make_consumer, make_producer
from podium.runtime.settings import ConsumerSettings

pytestmark = pytest.mark.integration

#: the longest any case waits for the transport to deliver
DEADLINE_S = 30
#: group changes on tansu take about half a session: short sessions keep the cases quick
GROUP = ConsumerSettings(session_timeout_ms=2_000, heartbeat_interval_ms=500)


async def _read(consumer: Consumer, count: int) -> list[Record]:
    """Exactly `count` records (in fetch order), or fail at the deadline."""
    records: list[Record] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(records) < count:
        assert time.monotonic() < deadline, f"read {len(records)} of {count} records"
        for batch in (await consumer.getmany(timeout_ms=200)).values():
            records.extend(batch)
    return records


async def _until(poll: Callable[[], Awaitable[object]], done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        assert time.monotonic() < deadline, "the transport never got there"
        await poll()


async def test_a_key_goes_to_the_partition_kafkas_partitioner_picks(
    transport: str, unique: str
) -> None:
    await ensure_topics(transport, [unique], partitions=4)
    producer = make_producer(transport)
    await producer.start()
    try:
        keys = [f"workflow-{i}".encode() for i in range(24)]
        sent = [await producer.send_and_wait(unique, value=b"v", key=key) for key in keys]
    finally:
        await producer.stop()
    expected = [DefaultPartitioner()(key, [0, 1, 2, 3], [0, 1, 2, 3]) for key in keys]
    assert [metadata.partition for metadata in sent] == expected
    assert len(set(expected)) > 1  # the keys do spread


async def test_records_come_back_in_order_with_keys_headers_and_tombstones(
    transport: str, unique: str
) -> None:
    await ensure_topics(transport, [unique], partitions=2)
    producer = make_producer(transport)
    await producer.start()
    try:
        for i in range(10):
            value = None if i == 7 else f"value-{i}".encode()
            headers = [("ce_id", f"{i}".encode()), ("empty", b"")]
            await producer.send_and_wait(
                unique, value=value, key=f"k{i}".encode(), partition=1, headers=headers
            )
    finally:
        await producer.stop()
    consumer = make_consumer(transport, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(unique, 1)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records = await _read(consumer, 10)
        assert await consumer.position(tp) == 10
    finally:
        await consumer.stop()
    assert [r.offset for r in records] == list(range(10))
    assert [r.key for r in records] == [f"k{i}".encode() for i in range(10)]
    assert records[7].value is None
    assert records[3].value == b"value-3"
    assert [tuple(h) for h in records[3].headers] == [("ce_id", b"3"), ("empty", b"")]


async def test_a_group_member_resumes_from_the_groups_committed_offset(
    transport: str, unique: str
) -> None:
    await ensure_topics(transport, [unique], partitions=1)
    producer = make_producer(transport)
    await producer.start()
    try:
        for i in range(6):
            await producer.send_and_wait(unique, value=f"{i}".encode(), key=b"k")
    finally:
        await producer.stop()
    tp = TopicPartition(unique, 0)
    first = make_consumer(transport, unique, group_id=unique, settings=GROUP)
    await first.start()
    try:
        assert [r.value for r in await _read(first, 6)] == [f"{i}".encode() for i in range(6)]
        await first.commit({tp: 4})
    finally:
        await first.stop()
    second = make_consumer(transport, unique, group_id=unique, settings=GROUP)
    await second.start()
    try:
        assert [r.value for r in await _read(second, 2)] == [b"4", b"5"]
    finally:
        await second.stop()


async def test_latest_reads_only_what_comes_after_the_member_joined(
    transport: str, unique: str
) -> None:
    await ensure_topics(transport, [unique], partitions=1)
    producer = make_producer(transport)
    await producer.start()
    consumer = make_consumer(
        transport, unique, group_id=unique, settings=GROUP, auto_offset_reset="latest"
    )
    try:
        await producer.send_and_wait(unique, value=b"before", key=b"k")
        await consumer.start()
        await _until(lambda: consumer.getmany(timeout_ms=100), lambda: bool(consumer.assignment()))
        await consumer.position(TopicPartition(unique, 0))  # resolves "latest" now
        await producer.send_and_wait(unique, value=b"after", key=b"k")
        assert [r.value for r in await _read(consumer, 1)] == [b"after"]
    finally:
        await consumer.stop()
        await producer.stop()


async def test_paused_partitions_are_not_fetched_until_resumed(transport: str, unique: str) -> None:
    await ensure_topics(transport, [unique], partitions=2)
    producer = make_producer(transport)
    await producer.start()
    try:
        for partition in (0, 1):
            await producer.send_and_wait(unique, value=b"v", key=b"k", partition=partition)
    finally:
        await producer.stop()
    consumer = make_consumer(transport, group_id=None)
    await consumer.start()
    try:
        held, free = TopicPartition(unique, 0), TopicPartition(unique, 1)
        consumer.assign([held, free])
        await consumer.seek_to_beginning(held, free)
        consumer.pause(held)
        assert {r.partition for r in await _read(consumer, 1)} == {1}
        assert consumer.paused() == {held}
        assert await consumer.getmany(timeout_ms=300) == {}
        consumer.resume(held)
        assert {r.partition for r in await _read(consumer, 1)} == {0}
    finally:
        await consumer.stop()


class _Journal(ConsumerRebalanceListener):  # type: ignore[misc]
    """What a member's listener saw, in order, into a journal shared by the members."""

    def __init__(self, name: str, journal: list[tuple[str, str, set[TopicPartition]]]) -> None:
        self.name = name
        self.journal = journal
        self.consumer: Consumer | None = None

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked and self.consumer is not None:
            # what it owned may still be committed while it revokes (a hand-over)
            await self.consumer.commit({tp: 0 for tp in revoked})
        self.journal.append((self.name, "revoked", set(revoked)))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.journal.append((self.name, "assigned", set(assigned)))


async def test_a_joining_member_gets_the_same_partition_numbers_of_every_topic_after_a_revoke(
    transport: str, unique: str
) -> None:
    names = [f"{unique}.a", f"{unique}.b"]
    await ensure_topics(transport, names, partitions=4)
    journal: list[tuple[str, str, set[TopicPartition]]] = []
    members = {}
    for name in ("first", "second"):
        consumer = make_consumer(
            transport,
            group_id=unique,
            settings=GROUP,
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        listener = _Journal(name, journal)
        listener.consumer = consumer
        consumer.subscribe(names, listener=listener)
        members[name] = consumer
    first, second = members["first"], members["second"]
    await first.start()
    try:
        await _until(lambda: first.getmany(timeout_ms=100), lambda: len(first.assignment()) == 8)
        await second.start()
        try:

            async def poll_both() -> None:
                await asyncio.gather(first.getmany(timeout_ms=100), second.getmany(timeout_ms=100))

            await _until(poll_both, lambda: _split(first.assignment(), second.assignment()))
            owned = {name: m.assignment() for name, m in members.items()}
        finally:
            await second.stop()
    finally:
        await first.stop()
    assert owned["first"] | owned["second"] == {
        TopicPartition(t, p) for t in names for p in range(4)
    }
    assert not owned["first"] & owned["second"]
    for member in owned.values():  # co-partitioning: a number's partitions stay together
        numbers = {tp.partition for tp in member}
        assert member == {TopicPartition(t, p) for t in names for p in numbers}
    # eager: the first member gave its partitions up before the second was handed any
    revoked_at = journal.index(("first", "revoked", _all(names)))
    second_assigned = next(
        i for i, (name, kind, tps) in enumerate(journal) if name == "second" and kind == "assigned"
    )
    assert revoked_at < second_assigned


def _split(one: set[TopicPartition], other: set[TopicPartition]) -> bool:
    """Both members hold partitions and none is held twice: the rebalance has settled."""
    return bool(one and other) and len(one | other) == len(one) + len(other) == 8


def _all(names: list[str]) -> set[TopicPartition]:
    return {TopicPartition(t, p) for t in names for p in range(4)}


async def test_a_record_larger_than_a_request_is_refused_at_send(
    transport: str, unique: str
) -> None:
    await ensure_topics(transport, [unique], partitions=1)
    producer = make_producer(transport)
    await producer.start()
    try:
        with pytest.raises(MessageSizeTooLargeError):
            await producer.send_and_wait(unique, value=b"x" * (2 * 1024 * 1024), key=b"k")
        ack = await producer.send_and_wait(unique, value=b"small", key=b"k")
        assert ack.offset == 0  # the refused record took no offset
    finally:
        await producer.stop()
