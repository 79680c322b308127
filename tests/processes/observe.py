"""What the tests read back from the broker and the handlers' call log."""

from __future__ import annotations

import collections
from pathlib import Path

from podium.events import DecodeError, WorkflowCompleted, WorkflowFailed, decode, topics
from podium.runtime.changelog import read_partitions
from podium.runtime.kafka import raw_record
from podium.runtime.settings import Settings


def calls(env: dict[str, str]) -> collections.Counter[str]:
    """How often each command id's handler ran (the test services log every run)."""
    path = Path(env["PODIUM_TEST_CALLS"])
    return collections.Counter(path.read_text().split() if path.exists() else [])


async def endings(bootstrap: str, settings: Settings) -> dict[str, list[str]]:
    """Every terminal event on the lifecycle topic, by workflow id, in order."""
    found: dict[str, list[str]] = collections.defaultdict(list)
    async for record in read_partitions(
        bootstrap, topics.WORKFLOWS, set(range(settings.partitions)), settings.consumer
    ):
        try:
            event = decode(raw_record(record))
        except DecodeError:
            continue
        if isinstance(event.data, WorkflowCompleted | WorkflowFailed):
            found[event.workflowid].append(event.data.state)
    return found
