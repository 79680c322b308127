"""An in-memory Kafka bus: the client interface Podium uses, without a broker.

`memory://<name>` as bootstrap servers gives every producer, consumer and topic
admin of this process one shared bus of that name; the whole deployment (the
conductor or tracker, participants, workers, the client) then runs inside one
event loop, a workflow taking milliseconds. It is for tests, yours and ours —
faststream's test broker and Kafka Streams' TopologyTestDriver play the same
part — and it keeps the contract the real brokers keep (`tests/contract` runs
the same cases on it, on tansu and on Apache Kafka):

- topics are created explicitly with a partition count; a record to an unknown
  topic, a partition out of range or a record over `MAX_REQUEST_SIZE` fails the
  send as Kafka's client does;
- a key goes to the partition Kafka's default partitioner picks (murmur2), so
  co-partitioning holds as on a broker;
- offsets are contiguous per partition; records carry keys, values (None is a
  tombstone) and headers;
- a consumer group splits the partitions of its subscribed topics with the
  range assignor (one member gets the same partition number of every topic);
  a join or a leave is an eager rebalance: every member revokes (its listener
  runs, it may still commit what it owned) before anyone is assigned, and
  positions start from the group's committed offsets, else `auto_offset_reset`.

What it does not model: sessions and fencing (nothing in one process can stop a
member past its session), retention and compaction, transactions, and the
latencies of a network; prove those on a broker.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    MessageSizeTooLargeError,
    UnknownTopicOrPartitionError,
)
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import RecordMetadata

SCHEME = "memory://"
#: aiokafka's default `max_request_size`: a larger record fails its send
MAX_REQUEST_SIZE = 1024 * 1024

Record: TypeAlias = ConsumerRecord[bytes, bytes]


def is_memory(bootstrap_servers: str) -> bool:
    return bootstrap_servers.startswith(SCHEME)


class _Pulse:
    """Wakes every waiter when something changed (a record appended, a rebalance).

    A future per wait, rather than `asyncio.wait_for` on an Event: on Python 3.11
    `wait_for` can swallow a cancellation that lands as the event fires, and a
    consumer task cancelled that way polls on forever. A future also binds to the
    loop that waits, so a bus may outlive one test's event loop.
    """

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def fire(self) -> None:
        for waiter in self._waiters:
            _settle(waiter)
        self._waiters.clear()

    async def wait(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.add(waiter)
        timer = loop.call_later(timeout, _settle, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiters.discard(waiter)


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done() and not waiter.get_loop().is_closed():
        waiter.set_result(None)


@dataclass
class _Group:
    generation: int = 0
    #: member id -> its subscribed topics, in join order
    members: dict[str, Sequence[str]] = field(default_factory=dict)
    #: the assignment of `generation`, in force once every member has revoked
    assignment: dict[str, set[TopicPartition]] = field(default_factory=dict)
    #: members that still hold partitions of an earlier generation
    revoking: set[str] = field(default_factory=set)
    committed: dict[TopicPartition, int] = field(default_factory=dict)


class Bus:
    """The topics and consumer groups of one `memory://<name>`."""

    def __init__(self) -> None:
        self.topics: dict[str, list[list[Record]]] = {}
        self.groups: dict[str, _Group] = {}
        self.pulse = _Pulse()
        self._partitioner = DefaultPartitioner()
        self._ids = itertools.count(1)

    # -- topics ----------------------------------------------------------------

    def create_topic(self, name: str, partitions: int) -> None:
        """Create a topic; one that exists keeps its partition count (as on tansu)."""
        if partitions < 1:
            raise ValueError(f"topic {name!r} needs at least one partition")
        self.topics.setdefault(name, [[] for _ in range(partitions)])

    def partition_log(self, tp: TopicPartition) -> list[Record]:
        partitions = self.topics.get(tp.topic)
        if partitions is None or not 0 <= tp.partition < len(partitions):
            raise UnknownTopicOrPartitionError(f"{tp.topic}[{tp.partition}]")
        return partitions[tp.partition]

    def append(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int | None,
        headers: Sequence[tuple[str, bytes]],
        timestamp_ms: int | None,
    ) -> RecordMetadata:
        if value is None and key is None:
            raise ValueError("a record needs a key or a value")
        partitions = self.topics.get(topic)
        if partitions is None:
            raise UnknownTopicOrPartitionError(f"topic {topic!r} does not exist")
        size = len(value or b"") + len(key or b"") + sum(len(h) + len(v) for h, v in headers)
        if size > MAX_REQUEST_SIZE:
            raise MessageSizeTooLargeError(f"a {size}-byte record to {topic!r}")
        numbers = list(range(len(partitions)))
        number = self._partitioner(key, numbers, numbers) if partition is None else partition
        log = self.partition_log(TopicPartition(topic, number))
        timestamp = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        offset = len(log)
        log.append(
            ConsumerRecord(
                topic=topic,
                partition=number,
                offset=offset,
                timestamp=timestamp,
                timestamp_type=0,
                key=key,
                value=value,
                checksum=None,
                serialized_key_size=len(key) if key is not None else -1,
                serialized_value_size=len(value) if value is not None else -1,
                headers=list(headers),
            )
        )
        self.pulse.fire()
        return RecordMetadata(topic, number, TopicPartition(topic, number), offset, timestamp, 0, 0)

    # -- groups ----------------------------------------------------------------

    def join(self, group_id: str, topics: Sequence[str]) -> str:
        member = f"{group_id}-{next(self._ids)}"
        group = self.groups.setdefault(group_id, _Group())
        group.members[member] = topics
        self._rebalance(group)
        return member

    def leave(self, group_id: str, member: str) -> None:
        group = self.groups[group_id]
        group.members.pop(member, None)
        group.revoking.discard(member)
        self._rebalance(group)

    def _rebalance(self, group: _Group) -> None:
        """A new generation: everyone revokes, then the range assignment takes effect."""
        group.generation += 1
        group.revoking = set(group.members)
        group.assignment = {member: set() for member in group.members}
        subscribed = sorted({t for topics in group.members.values() for t in topics})
        for topic in subscribed:
            takers = [m for m, topics in group.members.items() if topic in topics]
            count = len(self.topics.get(topic, ()))
            share, extra = divmod(count, len(takers))
            start = 0
            for index, member in enumerate(takers):
                size = share + (1 if index < extra else 0)
                group.assignment[member] |= {
                    TopicPartition(topic, p) for p in range(start, start + size)
                }
                start += size
        self.pulse.fire()


#: every bus of this process, by name (`memory://<name>`)
_BUSES: dict[str, Bus] = {}


def bus(bootstrap_servers: str) -> Bus:
    """The bus a `memory://<name>` address names (made on first use)."""
    return _BUSES.setdefault(bootstrap_servers.removeprefix(SCHEME), Bus())


def drop(bootstrap_servers: str) -> None:
    """Forget a bus and everything on it (tests start afresh)."""
    _BUSES.pop(bootstrap_servers.removeprefix(SCHEME), None)


class MemoryProducer:
    """The part of `AIOKafkaProducer` Podium uses: each send is appended at once."""

    def __init__(self, bootstrap_servers: str, **_: Any) -> None:
        self.bus = bus(bootstrap_servers)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        metadata = self.bus.append(topic, value, key, partition, headers or (), timestamp_ms)
        future: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        future.set_result(metadata)
        return future

    async def send_and_wait(self, topic: str, value: bytes | None = None, **kwargs: Any) -> Any:
        return await (await self.send(topic, value, **kwargs))


class MemoryConsumer:
    """The part of `AIOKafkaConsumer` Podium uses, as a group member or by assignment."""

    def __init__(
        self,
        bootstrap_servers: str,
        *topics: str,
        group_id: str | None = None,
        auto_offset_reset: str = "earliest",
        max_poll_records: int | None = None,
        **_: Any,
    ) -> None:
        self.bus = bus(bootstrap_servers)
        self.group_id = group_id
        self.auto_offset_reset = auto_offset_reset
        self.max_poll_records = max_poll_records or 500
        self._topics: Sequence[str] = topics
        self._listener: ConsumerRebalanceListener | None = None
        self._member: str | None = None
        #: the generation whose assignment this member holds (0: none yet)
        self._generation = 0
        self._assigned: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()

    # -- lifecycle ---------------------------------------------------------------

    def subscribe(
        self, topics: Iterable[str], listener: ConsumerRebalanceListener | None = None
    ) -> None:
        self._topics = list(topics)
        self._listener = listener

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        if self._member is not None:
            raise IllegalStateError("a group member's partitions are assigned by its group")
        self._assigned = set(partitions)
        self._positions = {tp: self._reset(tp) for tp in self._assigned}

    async def start(self) -> None:
        if not self._topics:
            return
        if self.group_id is None:  # no group: every partition of the topics, as aiokafka does
            self.assign(
                TopicPartition(topic, p)
                for topic in self._topics
                for p in sorted(self.partitions_for_topic(topic) or ())
            )
        else:
            self._member = self.bus.join(self.group_id, self._topics)

    async def stop(self) -> None:
        if self._member is not None and self.group_id is not None:
            self.bus.leave(self.group_id, self._member)
            self._member = None
        self._assigned = set()

    # -- what it owns and where it reads -------------------------------------------

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        partitions = self.bus.topics.get(topic)
        return None if partitions is None else set(range(len(partitions)))

    def pause(self, *partitions: TopicPartition) -> None:
        self._paused |= set(partitions) & self._assigned

    def resume(self, *partitions: TopicPartition) -> None:
        self._paused -= set(partitions)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    async def position(self, tp: TopicPartition) -> int:
        self._owned(tp)
        return self._positions[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._owned(tp)
        self._positions[tp] = offset

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions or tuple(self._assigned):
            self.seek(tp, 0)

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        for tp in partitions or tuple(self._assigned):
            self.seek(tp, len(self.bus.partition_log(tp)))

    async def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.bus.partition_log(tp)) for tp in partitions}

    def highwater(self, tp: TopicPartition) -> int | None:
        return len(self.bus.partition_log(tp))

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self._member is None or self.group_id is None:
            raise IllegalStateError("only a group member commits offsets")
        lost = set(offsets) - self._assigned
        if lost:
            raise CommitFailedError(f"{sorted(lost)} are no longer assigned to this member")
        self.bus.groups[self.group_id].committed.update(offsets)

    async def committed(self, tp: TopicPartition) -> int | None:
        if self.group_id is None or self.group_id not in self.bus.groups:
            return None
        return self.bus.groups[self.group_id].committed.get(tp)

    # -- fetching -------------------------------------------------------------------

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Record]]:
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            await self._rebalanced()
            batch = self._fetch(partitions, max_records or self.max_poll_records)
            left = deadline - time.monotonic()
            if batch or left <= 0:
                await asyncio.sleep(0)  # a fetch is a yield point, as over a socket
                return batch
            await self.bus.pulse.wait(left)

    def _fetch(
        self, partitions: Sequence[TopicPartition], limit: int
    ) -> dict[TopicPartition, list[Record]]:
        wanted = [tp for tp in (partitions or sorted(self._assigned)) if tp in self._assigned]
        batch: dict[TopicPartition, list[Record]] = {}
        for tp in wanted:
            if tp in self._paused or limit <= 0:
                continue
            position = self._positions[tp]
            records = self.bus.partition_log(tp)[position : position + limit]
            if records:
                batch[tp] = records
                self._positions[tp] = position + len(records)
                limit -= len(records)
        return batch

    async def _rebalanced(self) -> None:
        """Take part in a rebalance: revoke what is held, wait for the others, take the new."""
        if self._member is None or self.group_id is None:
            return
        group = self.bus.groups[self.group_id]
        while self._generation != group.generation:
            if self._member in group.revoking:
                if self._assigned and self._listener is not None:
                    await self._listener.on_partitions_revoked(set(self._assigned))
                self._assigned = set()
                self._paused = set()
                group.revoking.discard(self._member)
                self.bus.pulse.fire()
            if group.revoking:  # the others still hold partitions of the old generation
                await self.bus.pulse.wait(0.1)
                continue
            generation = group.generation
            self._assigned = set(group.assignment.get(self._member, ()))
            self._positions = {tp: self._start(group, tp) for tp in self._assigned}
            self._generation = generation
            if self._listener is not None:
                await self._listener.on_partitions_assigned(set(self._assigned))

    def _start(self, group: _Group, tp: TopicPartition) -> int:
        committed = group.committed.get(tp)
        return self._reset(tp) if committed is None else committed

    def _reset(self, tp: TopicPartition) -> int:
        return len(self.bus.partition_log(tp)) if self.auto_offset_reset == "latest" else 0

    def _owned(self, tp: TopicPartition) -> None:
        if tp not in self._assigned:
            raise IllegalStateError(f"{tp} is not assigned to this consumer")


async def ensure_topics(bootstrap_servers: str, names: Iterable[str], partitions: int) -> None:
    the_bus = bus(bootstrap_servers)
    for name in names:
        the_bus.create_topic(name, partitions)
