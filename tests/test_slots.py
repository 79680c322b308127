"""The handler-slot rule the worker and the participant share: wait for a slot before pausing."""

from __future__ import annotations

import asyncio

from podium.runtime.slots import a_slot_frees


async def test_a_full_consumer_sees_a_slot_free_as_soon_as_a_handler_ends() -> None:
    release = asyncio.Event()
    running: set[asyncio.Task[bool]] = set()
    for _ in range(2):
        task = asyncio.create_task(release.wait())
        running.add(task)
        task.add_done_callback(running.discard)
    assert not await a_slot_frees(running, 2)  # both still busy after the wait: pause
    waiting = asyncio.create_task(a_slot_frees(running, 2))
    release.set()  # the handlers end: the waiter answers at once, well before its limit
    assert await asyncio.wait_for(waiting, 1.0)
    assert await a_slot_frees(running, 2)  # not full: no wait at all
