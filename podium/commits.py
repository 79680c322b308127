"""Committing input offsets only after what they caused is acknowledged, without waiting.

A stateful consumer (conductor, tracker, choreography participant) sends a
batch's effects — changelog snapshots, commands, outcomes — and goes straight
back to `getmany`. The batch's offsets are committed once every one of its sends
and every earlier batch's sends are acknowledged, at most every `interval`
seconds (Kafka Streams' `commit.interval.ms`). At-least-once still holds: an
offset is never committed before its effects are on the broker. The loop waits
only when too many batches are in flight (backpressure) or when it must hand
partitions over (`drain`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

log = logging.getLogger("podium.commits")

Offsets = dict[TopicPartition, int]


class AckedCommits:
    def __init__(
        self, consumer: AIOKafkaConsumer, *, interval: float = 0.05, max_in_flight: int = 8
    ) -> None:
        self.consumer = consumer
        self.interval = interval
        self.max_in_flight = max_in_flight
        self._batches: deque[tuple[Offsets, list[asyncio.Future[Any]]]] = deque()
        self._ready: Offsets = {}
        self._last_commit = time.monotonic()

    def add(self, offsets: Offsets, acks: list[asyncio.Future[Any]]) -> None:
        if offsets or acks:
            self._batches.append((offsets, acks))

    async def step(self) -> None:
        """Collect acknowledged batches, commit when due, and apply backpressure."""
        while len(self._batches) > self.max_in_flight:
            await asyncio.gather(*self._batches[0][1])
            self._collect()
        self._collect()
        if self._ready and time.monotonic() - self._last_commit >= self.interval:
            await self._commit()

    async def drain(self) -> None:
        """Wait for every ack and commit everything: before handing partitions over."""
        for _, acks in list(self._batches):
            await asyncio.gather(*acks)
        self._collect()
        if self._ready:
            await self._commit()

    def _collect(self) -> None:
        while self._batches and all(ack.done() for ack in self._batches[0][1]):
            offsets, acks = self._batches.popleft()
            for ack in acks:
                if ack.exception() is not None:
                    # an effect never reached the broker: stop here, the records come again
                    raise ack.exception()  # type: ignore[misc]
            self._ready.update(offsets)

    async def _commit(self) -> None:
        owned = self.consumer.assignment()
        offsets = {tp: offset for tp, offset in self._ready.items() if tp in owned}
        self._ready = {}
        self._last_commit = time.monotonic()
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:  # a rebalance: the records come again
            log.warning("commit failed (%s); those records will be redelivered", exc)
