"""Task services whose handlers wait at gates the test opens, one at a time.

A browser test looks at the dashboard while a workflow is held at a known step,
then opens that step's gate and waits (with Playwright's expectations) for the
page to show the next one: the test, not a clock, decides when each attempt ends.
Gates are per workflow, so the two modes' workflows never share one.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from podium import TaskError, TaskService

#: (workflow id, gate name) -> opened by the test
_GATES: defaultdict[tuple[str, str], asyncio.Event] = defaultdict(asyncio.Event)


def gate(workflow_id: str, name: str) -> asyncio.Event:
    return _GATES[(workflow_id, name)]


def open_gate(workflow_id: str, name: str) -> None:
    gate(workflow_id, name).set()


shop = TaskService("shop")


@shop.task("shop.reserve")
async def reserve(input: dict, ctx) -> dict:  # type: ignore[no-untyped-def]
    await gate(ctx.workflow_id, f"reserve-{ctx.attempt}").wait()
    if ctx.attempt == 1:
        raise TaskError("inventory busy", retryable=True)
    return {"reservation": f"r-{input['sku']}"}


@shop.task("shop.charge")
async def charge(input: dict, ctx) -> dict:  # type: ignore[no-untyped-def]
    await gate(ctx.workflow_id, "charge").wait()
    raise TaskError(f"card declined: {input['amount']} over the limit", retryable=False)


@shop.task("shop.release")
async def release(input: dict, ctx) -> dict:  # type: ignore[no-untyped-def]
    await gate(ctx.workflow_id, "release").wait()
    return {"released": input["reservation"]}


@shop.task("shop.ship")
async def ship(input: dict, ctx) -> dict:  # type: ignore[no-untyped-def]
    return {"tracking": "t-1"}


services = [shop]
