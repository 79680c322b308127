"""`podium history-store`: a processor that writes what the topics say to the database.

It reads `podium.workflows` (starts and ends, from the conductor and the tracker)
and the command and outcome topics of the deployment's task types, both modes
alike. Each consumed batch becomes one database transaction in `flush`; the
runtime's loop commits the batch's offsets only after it (at-least-once: a crash
between the two replays the batch, and the upserts write the same rows again).
It keeps no state of its own, so it has no changelog and nothing to restore;
several history stores in one group share the partitions.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import exc

from podium.events import CloudEvent, topics
from podium.history.database import Database, HistoryError, describe
from podium.history.rows import Batch
from podium.runtime.kafka import fetch_wait_ms
from podium.runtime.loop import BaseProcessor, Loop, Spec
from podium.runtime.settings import Settings
from podium.workflow.catalog import Catalog

log = logging.getLogger("podium.history")

#: how long a batch's write is retried while the database is unreachable or busy
WRITE_PATIENCE_S = 60.0
#: the longest a fetch waits for data (at least): the store is off the hot path, and on
#: tansu an idle store polling its 1 + 2 x task types topics every 5 ms cost ~20 % of a
#: core itself and ~40 % in the broker (~2 % and ~8 % at 100 ms; benchmarks/README.md)
FETCH_MAX_WAIT_MS = 100


class Recorder(BaseProcessor):
    name = "history-store"
    group = "podium.history"

    def __init__(
        self,
        catalog: Catalog,
        bootstrap_servers: str,
        settings: Settings,
        database: Database,
        *,
        only: str | None = None,
    ) -> None:
        self.catalog = catalog
        self.database = database
        #: one-shot (`podium run`): this workflow only (see `Spec.only`)
        self.only = only
        wait = max(fetch_wait_ms(bootstrap_servers, settings.consumer), FETCH_MAX_WAIT_MS)
        consumer = settings.consumer.model_copy(update={"fetch_max_wait_ms": wait})
        settings = settings.model_copy(update={"consumer": consumer})
        task_topics = topics.task_topics(catalog.task_types)
        spec = Spec(
            name=self.name,
            group=self.group,
            inputs=[topics.WORKFLOWS, *task_topics],
            topics=[topics.WORKFLOWS, topics.DEAD_LETTER, *task_topics],
            changelog="",  # none: the database is the store, and it is written every batch
            only=only,
        )
        self.loop = Loop(spec, self, bootstrap_servers, settings)
        self.ready = self.loop.ready
        self._batch = Batch()
        self._recorded: dict[str, asyncio.Future[None]] = {}
        #: rows written since start (a figure for benchmarks)
        self.rows = 0

    def stop(self) -> None:
        self.loop.stop()

    async def run(self) -> None:
        await self.database.migrate()
        await self.database.put_definitions(d.model_dump(mode="json") for d in self.catalog)
        log.info("history store writing to %s", describe(self.database.url))
        try:
            await self.loop.run()
        finally:
            await self.database.close()

    def recorded(self, workflow_id: str) -> asyncio.Future[None]:
        """Resolved once the end of `workflow_id` is in the database (ask before it ends)."""
        future = self._recorded.get(workflow_id)
        if future is None:
            future = self._recorded[workflow_id] = asyncio.get_running_loop().create_future()
        return future

    # -- the processor ----------------------------------------------------------------

    def route(self, partition: int, event: CloudEvent, now: float) -> None:
        if self.only is None or event.workflowid == self.only:
            self._batch.add(event)

    async def flush(self) -> None:
        batch = self._batch
        if not batch:
            return
        await self._write(batch)
        self._batch = Batch()
        self.rows += len(batch)
        for workflow_id in batch.ended:
            future = self._recorded.pop(workflow_id, None)
            if future is not None and not future.done():
                future.set_result(None)

    async def _write(self, batch: Batch) -> None:
        """One transaction; retried while the database is unreachable, for a while."""
        deadline = time.monotonic() + WRITE_PATIENCE_S
        delay = 0.1
        while True:
            try:
                await self.database.write(batch)
                return
            except (exc.OperationalError, exc.InterfaceError, OSError) as error:
                if time.monotonic() + delay > deadline:
                    raise HistoryError(f"cannot write the history: {error}") from error
                log.warning("history write failed (%s); retrying in %.1fs", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
