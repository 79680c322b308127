"""Task services for the end-to-end tests: behaviour chosen by the task input.

Every handler run is recorded: in `CALLS` (same process) and, when
`PODIUM_TEST_CALLS` names a file, as one line in it (separate processes), so
tests can count how often each attempt's handler really ran.
"""

from __future__ import annotations

import asyncio
import os

from podium import TaskError, TaskService

CALLS: list[tuple[str, str, int, bool]] = []

steps = TaskService("steps")
undo = TaskService("undo")


def _record(ctx) -> None:  # type: ignore[no-untyped-def]
    CALLS.append((ctx.workflow_id, ctx.task_id, ctx.attempt, ctx.compensation))
    path = os.environ.get("PODIUM_TEST_CALLS")
    if path:
        with open(path, "a") as out:
            out.write(f"{ctx.command_id}\n")


@steps.task("test.step")
async def step(input: dict, ctx) -> dict:  # type: ignore[no-untyped-def]
    _record(ctx)
    if input.get("exit"):  # a command that kills its service (process tests only)
        os._exit(1)
    if input.get("sleep_first") and ctx.attempt == 1:
        await asyncio.sleep(input["sleep_first"])
    if input.get("sleep"):
        await asyncio.sleep(input["sleep"])
    if ctx.attempt <= int(input.get("fail_times") or 0):
        raise RuntimeError(f"transient failure on attempt {ctx.attempt}")
    if input.get("fatal"):
        raise TaskError("fatal failure", retryable=False)
    if input.get("big"):
        return {"blob": "x" * int(input["big"])}
    return {"task": ctx.task_id, "echo": input.get("echo")}


@undo.task("test.undo")
def compensate(input: dict, ctx) -> dict:  # type: ignore[no-untyped-def]
    _record(ctx)
    return {"undone": input.get("undo")}


services = [steps, undo]
