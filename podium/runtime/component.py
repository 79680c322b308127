"""What the CLI and one-shot runs start and stop: a conductor, a tracker, a worker..."""

from __future__ import annotations

import asyncio
from typing import Protocol


class Component(Protocol):
    #: set once the component owns its partitions and has restored their state
    ready: asyncio.Event

    async def run(self) -> None:
        """Consume until `stop`; then drain, commit and leave the group."""

    def stop(self) -> None: ...
