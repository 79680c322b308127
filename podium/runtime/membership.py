"""Whether a group member still owns its partitions, checked before it acts.

A member that was paused (SIGSTOP, a long GC, a frozen VM) longer than the
session timeout has lost its partitions: another member restored them from the
changelog and carries on. When the paused one resumes, its loop runs before its
heartbeat task learns the news; left alone it fires its stale timers and
publishes decisions (a Timeout ending for workflows another member completed)
and writes them into the changelog. Kafka's real fence is a transactional
producer; tansu has none, so every batch asks, before it sends anything:

- has the group already told us we are out (generation reset)? — free;
- has more than a third of the session timeout passed since the last batch?
  then a heartbeat round trip with our generation says whether it is still
  current (while no coordinator answers, a broker being down, it asks again,
  for up to a session). In steady state batches come every few ms and nothing
  is sent.

A member found out of date drops what its batch decided and its in-memory
state, and rejoins; on assignment it restores from the changelog like anyone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.protocol.group import JoinGroupRequest

from podium.runtime.kafka import Consumer

log = logging.getLogger("podium.membership")

#: seconds between heartbeats while the group coordinator cannot be reached
RETRY_S = 0.1


def _coordinator(consumer: Consumer) -> Any:
    """aiokafka's group coordinator; None outside a Kafka group: a consumer assigned its
    partitions by hand, or the in-memory bus (no process pauses past a session there)."""
    return consumer._coordinator if isinstance(consumer, AIOKafkaConsumer) else None


class Membership:
    def __init__(self, consumer: Consumer, session_timeout_ms: int) -> None:
        self.consumer = consumer
        self.session = session_timeout_ms / 1000
        self.gap = self.session / 3
        self._checked = time.monotonic()

    def lost(self) -> bool:
        """The group coordinator has already said this member's generation is gone."""
        coordinator = _coordinator(self.consumer)
        if coordinator is None:
            return False  # not in a group (manual assignment): nobody to be fenced by
        return bool(coordinator.member_id == JoinGroupRequest.UNKNOWN_MEMBER_ID)

    async def current(self) -> bool:
        """Whether this member may act on its partitions now (see the module docstring)."""
        if _coordinator(self.consumer) is None:
            return True
        if self.lost():
            return False
        now = time.monotonic()
        stale = now - self._checked > self.gap
        self._checked = now
        if not stale:
            return True
        # a definite answer is needed before sending: a coordinator moving (a broker
        # down) is waited for, up to a session; only a reset generation means fenced
        deadline = now + self.session
        while not await self._heartbeat():
            if self.lost():
                log.warning("this member's group generation is no longer current: fenced")
                return False
            if time.monotonic() > deadline:
                log.warning("no group coordinator answered for a session: acting as fenced")
                return False
            await asyncio.sleep(RETRY_S)  # a new coordinator is being found
        self._checked = time.monotonic()
        return not self.lost()

    async def _heartbeat(self) -> bool:
        coordinator = _coordinator(self.consumer)
        try:
            return bool(await coordinator._do_heartbeat())
        except KafkaError as exc:  # an error code aiokafka does not expect: no answer
            log.warning("group heartbeat failed: %s", exc)
            return False

    def rejoin(self) -> None:
        """Ask for a rebalance: on assignment the partitions are restored afresh."""
        coordinator = _coordinator(self.consumer)
        if coordinator is not None:
            coordinator.request_rejoin()
