"""Committing input offsets only after what they caused is acknowledged, without waiting.

A stateful consumer (conductor, tracker, choreography participant) sends a
batch's events — commands, outcomes — at once and goes straight back to
`getmany`. State snapshots go to the changelog only when a commit is due
(`interval`, Kafka Streams' `commit.interval.ms` and its caching store): a
workflow that changes five times in that window is written once. A batch that
carried the snapshots is *sealed*; the offsets of it and of every batch before
it are committed once all their sends are acknowledged. At-least-once holds: no
offset is committed before the state and events it caused are on the broker
(a crash replays the input; commands have deterministic ids, so a replayed
command is a duplicate the services answer from their records). The loop
waits only when too many batches are in flight (backpressure) or when it must
hand partitions over (`drain`, after a sealed batch).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from podium.runtime.kafka import Consumer

log = logging.getLogger("podium.commits")

Offsets = dict[TopicPartition, int]


class AckedCommits:
    def __init__(
        self, consumer: Consumer, *, interval: float = 0.05, max_in_flight: int = 8
    ) -> None:
        self.consumer = consumer
        self.interval = interval
        self.max_in_flight = max_in_flight
        self._batches: deque[tuple[Offsets, list[asyncio.Future[Any]], bool]] = deque()
        self._unsealed: Offsets = {}
        self._ready: Offsets = {}
        self._last_seal = time.monotonic()
        #: at most one commit in flight, in the background: a commit on tansu under load
        #: takes 20+ ms, which the loop should not sit through
        self._committing: asyncio.Task[None] | None = None

    def due(self) -> bool:
        """Whether this batch should carry the snapshots (and so seal what came before)."""
        return time.monotonic() - self._last_seal >= self.interval

    def add(self, offsets: Offsets, acks: list[asyncio.Future[Any]], *, sealed: bool) -> None:
        if sealed:
            self._last_seal = time.monotonic()
        if offsets or acks or sealed:
            self._batches.append((offsets, acks, sealed))

    async def step(self) -> None:
        """Collect acknowledged batches, commit when due, and apply backpressure."""
        while len(self._batches) > self.max_in_flight:
            await asyncio.gather(*self._batches[0][1])
            self._collect()
        self._collect()
        if self._ready and (self._committing is None or self._committing.done()):
            self._committing = asyncio.create_task(self._commit(self._take_ready()))

    def discard(self) -> None:
        """Forget uncommitted batches: their records come again to whoever owns them next."""
        self._batches.clear()
        self._unsealed = {}
        self._ready = {}

    async def drain(self) -> None:
        """Wait for every ack and commit: call it after adding a sealed batch."""
        for _, acks, _ in list(self._batches):
            await asyncio.gather(*acks)
        self._collect()
        if self._committing is not None:
            await self._committing
        if self._ready:
            await self._commit(self._take_ready())

    def _collect(self) -> None:
        while self._batches and all(ack.done() for ack in self._batches[0][1]):
            offsets, acks, sealed = self._batches.popleft()
            for ack in acks:
                if ack.exception() is not None:
                    # an effect never reached the broker: stop here, the records come again
                    raise ack.exception()  # type: ignore[misc]
            self._unsealed.update(offsets)
            if sealed:
                self._ready.update(self._unsealed)
                self._unsealed = {}

    def _take_ready(self) -> Offsets:
        offsets, self._ready = self._ready, {}
        return offsets

    async def _commit(self, offsets: Offsets) -> None:
        await commit_owned(self.consumer, offsets)


async def commit_owned(consumer: Consumer, offsets: Offsets) -> None:
    """Commit the offsets of partitions the consumer still owns; a failed commit is a
    rebalance under way, and only means those records are delivered again."""
    owned = consumer.assignment()
    offsets = {tp: offset for tp, offset in offsets.items() if tp in owned}
    if not offsets:
        return
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, KafkaError) as exc:
        log.warning("commit failed (%s); those records will be redelivered", exc)
