"""The one consume, process, seal and commit loop every stateful consumer runs on.

Kafka Streams' Processor API is the model: a processor answers "what do I do
with this event, with the timers now due, and what is my snapshot of this key";
the loop owns the clients and everything around them:

    getmany (gap-safe reader) -> decode, or dead-letter -> processor.route(...)
      -> processor.fire(now) -> processor.flush() -> send what the batch caused,
      snapshots when a commit is due (podium.runtime.outbox) -> commit once acknowledged
    assigned: hold the new partitions back, processor.restore(...), release
    revoked:  seal and drain (or, fenced, drop), processor.revoke(...)

The conductor, the tracker and the choreography participant are processors.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor

from podium import metrics
from podium.events import CloudEvent, RawRecord, event_type
from podium.runtime.commits import AckedCommits
from podium.runtime.kafka import ContiguousReader, create_topics, make_consumer, make_producer
from podium.runtime.membership import Membership
from podium.runtime.outbox import Outbox, end_batch, handle, seal_and_drain
from podium.runtime.settings import Settings

log = logging.getLogger("podium.runtime")

#: the longest a poll waits when no timer is due sooner
IDLE_POLL_MS = 100


class Processor(Protocol):
    def route(self, partition: int, event: CloudEvent, now: float) -> None:
        """One decoded input event; effects go to the loop's outbox."""

    def fire(self, now: float) -> None:
        """The timers due by `now`."""

    def next_due(self) -> float | None:
        """When the earliest timer is due (epoch seconds), or None."""

    def snapshot(self, key: str) -> bytes | None:
        """The changelog value of a changed key (None: nothing to write)."""

    async def restore(self, partitions: set[int]) -> None:
        """Rebuild the state of newly assigned partitions (their records wait meanwhile)."""

    def revoke(self, partitions: set[int]) -> None:
        """Forget the state of partitions this member no longer owns."""

    async def before_poll(self) -> None:
        """Backpressure, before each poll: wait a little, pause or resume (through the
        loop's reader)."""

    async def flush(self) -> None:
        """After a batch is routed and the due timers fired, before what it caused is sent
        and its offsets committed: write what the processor keeps outside Kafka (the
        history store's database transaction). Most processors keep nothing there."""

    async def drain(self) -> None:
        """On stop, before the last seal: wait for the work still running."""


class BaseProcessor:
    """A processor's defaults: no timers, no state, no backpressure, nothing kept outside
    Kafka, nothing left running. A processor overrides what it uses."""

    def route(self, partition: int, event: CloudEvent, now: float) -> None:
        return None

    def fire(self, now: float) -> None:
        return None

    def next_due(self) -> float | None:
        return None

    def snapshot(self, key: str) -> bytes | None:
        return None

    async def restore(self, partitions: set[int]) -> None:
        return None

    def revoke(self, partitions: set[int]) -> None:
        return None

    async def before_poll(self) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def drain(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Spec:
    """Where a processor's loop reads and writes."""

    name: str
    group: str
    inputs: Sequence[str]
    #: every topic to create before starting (the inputs, outputs and changelog)
    topics: Sequence[str]
    changelog: str
    #: records of this topic are routed first in a batch (a workflow's trigger before
    #: outcomes that share the batch)
    first: str | None = None
    #: decodable events the processor refuses: dead-lettered with the reason
    rejected: tuple[type[Exception], ...] = ()
    #: told of each record dead-lettered, with its partition, the record, why and the
    #: batch's time: the conductor and the tracker answer a rejected trigger there
    refuse: Callable[[int, RawRecord, Exception, float], None] | None = None
    #: one-shot (`podium run`): this workflow only, in a group of its own, reading from
    #: the end and restoring nothing, so a live deployment on the same broker is untouched
    only: str | None = None
    #: inputs that are not Podium's events (the trigger gateway's bound topics): their
    #: records go to `take` undecoded, which dead-letters what it refuses itself
    foreign: frozenset[str] = frozenset()
    take: Callable[[ConsumerRecord[bytes, bytes], float], None] | None = None
    #: a group with no committed offset starts at the end of its inputs
    from_end: bool = False
    #: event types the processor never acts on, skipped by their `ce_type` header before
    #: decoding (the services' start markers, which share the outcome topics): half the
    #: records the conductor reads. One of them that is garbage is not dead-lettered here;
    #: the history store, which records markers, dead-letters it.
    ignored: frozenset[str] = frozenset()


class Loop:
    def __init__(
        self, spec: Spec, processor: Processor, bootstrap_servers: str, settings: Settings
    ) -> None:
        self.spec = spec
        self.processor = processor
        self.bootstrap_servers = bootstrap_servers
        self.settings = settings
        self.ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self.producer = make_producer(
            bootstrap_servers, enable_idempotence=settings.idempotent_producer
        )
        # range assignment gives one member the same partition number of every input
        # topic (co-partitioning), as Kafka Streams requires
        group = f"{spec.group}.only.{spec.only}" if spec.only else spec.group
        self.consumer = make_consumer(
            bootstrap_servers,
            group_id=group,
            settings=settings.consumer,
            partition_assignment_strategy=(RangePartitionAssignor,),
            auto_offset_reset="latest" if spec.only or spec.from_end else "earliest",
        )
        # what one batch caused, sent together and acknowledged before the commit
        self.outbox = Outbox(self.producer, spec.changelog)
        self.reader = ContiguousReader(self.consumer)
        self._ignored = frozenset(t.encode() for t in spec.ignored)
        self._lag = metrics.Lag(group, self.reader.lag)
        self._commits = AckedCommits(self.consumer, interval=settings.commit_interval_ms / 1000)
        self._membership = Membership(self.consumer, settings.consumer.session_timeout_ms)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        await create_topics(self.bootstrap_servers, self.spec.topics, self.settings)
        self.consumer.subscribe(list(self.spec.inputs), listener=_Listener(self))
        await self.producer.start()
        await self.consumer.start()
        try:
            while not self._stopping.is_set():
                await self.processor.before_poll()
                batch = await self.reader.getmany(timeout_ms=self._poll_timeout_ms())
                self._lag.tick()
                await self._process(batch)
            await self.processor.drain()
            await self.seal_and_drain()
        finally:
            await self.consumer.stop()
            await self.producer.stop()
            log.info("%s stopped", self.spec.name)

    def _poll_timeout_ms(self) -> int:
        due = self.processor.next_due()
        if due is None:
            return IDLE_POLL_MS
        return max(0, min(IDLE_POLL_MS, int((due - time.time()) * 1000)))

    async def _process(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        now = time.time()
        route = functools.partial(self.processor.route, now=now)
        refuse = functools.partial(_at, self.spec.refuse, now) if self.spec.refuse else None
        for tp in sorted(batch, key=lambda tp: tp.topic != self.spec.first):
            if tp.topic in self.spec.foreign and self.spec.take is not None:
                for record in batch[tp]:
                    self.spec.take(record, now)
                continue
            for record in batch[tp]:
                if self._ignored and event_type(record.headers) in self._ignored:
                    continue
                handle(record, route, self.outbox, self.spec.rejected, refuse)
        self.processor.fire(now)
        await self.processor.flush()
        snapshot = self.processor.snapshot
        if not await end_batch(self.outbox, self._commits, batch, snapshot, self._membership):
            # fenced: drop the state; the group hands the partitions out again
            self.processor.revoke({tp.partition for tp in self.consumer.assignment()})

    async def seal_and_drain(self) -> None:
        """Persist every changed state, wait for every ack, commit: before a hand-over."""
        snapshot = self.processor.snapshot
        await seal_and_drain(self.outbox, self._commits, snapshot, self._membership)


def _at(
    refuse: Callable[[int, RawRecord, Exception, float], None],
    now: float,
    partition: int,
    raw: RawRecord,
    why: Exception,
) -> None:
    refuse(partition, raw, why, now)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: Loop) -> None:
        self.loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.loop.seal_and_drain()
        self.loop.reader.forget(revoked)
        self.loop.processor.revoke({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self.loop.reader.restoring(assigned):
            await self.loop.processor.restore({tp.partition for tp in assigned})
        self.loop.ready.set()
