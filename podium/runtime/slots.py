"""Backpressure on handler slots: the orchestration worker's and the choreography
participant's one rule for when to stop fetching.

With every slot taken, wait until a handler ends, or 100 ms, before pausing the
partitions. Short handlers free a slot within milliseconds; pausing costs a fetch
again, since aiokafka drops what it fetched for a paused partition. A worker that
paused at once and then slept its 100 ms poll made at most ~600 tasks a second with
64 slots of ~10 ms handlers (the 1 -> 10 -> 1 fan-out at 58 workflows/s on Kafka).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

#: the longest a full consumer waits for a handler to end before it pauses
WITHIN_S = 0.1


async def a_slot_frees(running: Collection[asyncio.Task[Any]], slots: int) -> bool:
    """Whether fewer than `slots` handlers run, waiting up to `WITHIN_S` for one to end.

    `running` is the live collection the handlers leave when they end (a set, or a
    dict's values): it is counted again after the wait.
    """
    if len(running) < slots:
        return True
    await asyncio.wait(list(running), timeout=WITHIN_S, return_when=asyncio.FIRST_COMPLETED)
    return len(running) < slots
