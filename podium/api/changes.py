"""The live change stream behind `GET /api/events`: the history database, polled.

One poller serves every subscriber, and runs only while there is one: every
`interval` it reads a fingerprint of each workflow that can still change (every
one not ended, and the newest `newest`): its state and end, and its attempts'
number, ends and precedences (`Database.fingerprints`). A workflow whose
fingerprint moved is announced with its list row.

Why the database and not `podium.workflows`: a subscriber reacts to a change by
reading the API, and the API reads the database; announcing what is already
there means no reader ever fetches a change before it is stored. It also needs
no Kafka (the API serves what is recorded without one), and sees task-level
changes, which that topic does not carry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from podium.history import views
from podium.history.database import Database, HistoryError

log = logging.getLogger("podium.api")

#: how often the database is read while someone listens
INTERVAL_S = 0.25
#: ended workflows watched besides the running ones (a fast one may end between polls)
NEWEST = 200
#: changes held for one slow subscriber; past it, it misses some (it reads the API anyway)
BACKLOG = 1000


class Changes:
    def __init__(
        self, database: Database, *, interval: float = INTERVAL_S, newest: int = NEWEST
    ) -> None:
        self.database = database
        self.interval = interval
        self.newest = newest
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self._poller: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue of changed workflows (their list rows), for as long as the block runs."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(BACKLOG)
        self._queues.add(queue)
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll())
        try:
            yield queue
        finally:
            self._queues.discard(queue)
            if not self._queues:
                await self.close()

    async def close(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def _poll(self) -> None:
        seen: dict[str, tuple[Any, ...]] | None = None
        while True:
            try:
                now = await self.database.fingerprints(self.newest)
                if seen is not None:
                    changed = [wid for wid, mark in now.items() if seen.get(wid) != mark]
                    if changed:
                        self._publish(
                            await self.database.workflows(ids=changed, limit=len(changed))
                        )
                seen = now
            except HistoryError as error:
                log.warning("change stream: cannot read the history: %s", error)
            await asyncio.sleep(self.interval)

    def _publish(self, rows: list[dict[str, Any]]) -> None:
        for row in reversed(rows):  # oldest first
            item = views.summary(row)
            for queue in self._queues:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(item)
