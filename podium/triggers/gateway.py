"""The trigger gateway (`podium triggers`): the schedules, the event bindings and the
wait tasks of a set of definitions, as one component of processors on the runtime."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from podium.runtime.settings import Settings
from podium.triggers.bindings import Binder, bindings_of
from podium.triggers.schedules import Scheduler
from podium.triggers.waits import wait_parts
from podium.workflow.catalog import Catalog


def has_triggers(catalog: Catalog) -> bool:
    """Whether any definition has schedules, event bindings or wait tasks."""
    return any(definition.triggers or definition.waits for definition in catalog)


class Gateway:
    name = "triggers"

    def __init__(
        self,
        catalog: Catalog,
        bootstrap_servers: str,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.scheduler = Scheduler(catalog, bootstrap_servers, settings, clock=clock)
        # built only when bound: an unused one's Kafka consumer would be left unclosed
        self.binder = Binder(catalog, bootstrap_servers, settings) if bindings_of(catalog) else None
        #: the wait tasks' parts, in both modes: the watcher, a worker and a participant
        self.waits = wait_parts(catalog, bootstrap_servers, settings)
        self.parts: list[Any] = [
            self.scheduler,
            *([self.binder] if self.binder else []),
            *self.waits,
        ]
        self.ready = asyncio.Event()

    def stop(self) -> None:
        for part in self.parts:
            part.stop()

    async def run(self) -> None:
        async def ready() -> None:
            await asyncio.gather(*(part.ready.wait() for part in self.parts))
            self.ready.set()

        waiting = asyncio.create_task(ready())
        try:
            await asyncio.gather(*(part.run() for part in self.parts))
        finally:
            waiting.cancel()
