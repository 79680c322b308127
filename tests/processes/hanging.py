"""A task service whose handler never ends the first time it runs a command.

Only a drain timeout stops that first run; every later delivery of the same
command succeeds at once. Every run is one line in `PODIUM_TEST_CALLS`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from podium import TaskService

hangs = TaskService("hangs")

DEFINITION = """\
name: hang
version: 1
tasks:
  - {id: stuck, type: test.hang}
  - {id: after, type: test.hang, depends_on: [stuck]}
"""


def _record(command_id: str) -> int:
    """Log this run; how many runs of the command were logged before it."""
    calls = Path(os.environ["PODIUM_TEST_CALLS"])
    earlier = calls.read_text().split().count(command_id) if calls.exists() else 0
    with calls.open("a") as out:
        out.write(f"{command_id}\n")
    return earlier


@hangs.task("test.hang")
async def hang(input: dict, ctx) -> dict:  # type: ignore[no-untyped-def]
    earlier = await asyncio.to_thread(_record, ctx.command_id)
    if earlier == 0 and ctx.task_id == "stuck":
        await asyncio.Event().wait()  # never set: the run is abandoned or nothing
    return {"runs": earlier + 1}


services = [hangs]
