"""What the API sends to Kafka: triggers and cancel requests, through one lazy client.

The API reads without Kafka; the first trigger or cancel starts a `Client` on the
configured bootstrap servers (never an embedded broker: a trigger published into
a broker that vanishes with the API would be lost) and keeps it until shutdown.

An `Idempotency-Key` names the workflow id: `uuid5(key)`, so a repeated request
gets the same id from any API process, before or after a restart, and the
conductor (or tracker) starts that id once. Within one process a key reused with a
different request is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import orjson
from aiokafka.errors import KafkaError

from podium.client import Client, prepare_topics
from podium.events import Mode
from podium.runtime.cache import BoundedCache
from podium.runtime.settings import Settings
from podium.workflow.definition import Definition

#: the namespace of workflow ids made from idempotency keys
KEYS = uuid.UUID("6f1a4c1e-3b9f-4f0e-9d43-5b0f2c1a7e21")
#: idempotency keys (and ids triggered here) remembered per process
REMEMBERED = 100_000


class Refused(Exception):
    """A request the API cannot carry out; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Publisher:
    def __init__(
        self, bootstrap_servers: str | None, settings: Settings, task_types: set[str]
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.settings = settings
        self.task_types = task_types
        self._client: Client | None = None
        self._starting = asyncio.Lock()
        #: idempotency key -> (the request, its workflow id)
        self._keys: BoundedCache[str, tuple[bytes, str]] = BoundedCache(REMEMBERED)
        #: workflow id -> (name, version) of what this process triggered: cancellable
        #: before the history store has recorded it
        self.triggered: BoundedCache[str, tuple[str, int]] = BoundedCache(REMEMBERED)

    async def trigger(
        self,
        definition: Definition,
        input: dict[str, Any],
        *,
        mode: Mode,
        workflow_id: str | None,
        key: str | None,
    ) -> str:
        if key is not None:
            request = orjson.dumps(
                [definition.name, definition.version, input, mode, workflow_id],
                option=orjson.OPT_SORT_KEYS,
            )
            known = self._keys.get(key)
            if known is not None and known[0] != request:
                raise Refused(422, "this Idempotency-Key was used with a different request")
            workflow_id = workflow_id or uuid.uuid5(KEYS, key).hex
            self._keys.put(key, (request, workflow_id))
        client = await self._started()
        try:
            workflow_id = await client.trigger(
                definition, input, workflow_id=workflow_id, mode=mode
            )
        except KafkaError as error:
            raise Refused(503, f"cannot publish the trigger: {error}") from None
        self.triggered.put(workflow_id, (definition.name, definition.version))
        return workflow_id

    async def cancel(self, workflow_id: str, name: str, version: int, reason: str) -> None:
        client = await self._started()
        try:
            await client.cancel(workflow_id, name, version, reason=reason)
        except KafkaError as error:
            raise Refused(503, f"cannot publish the cancel request: {error}") from None

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(None, None, None)

    async def _started(self) -> Client:
        if not self.bootstrap_servers:
            raise Refused(
                400,
                "this API publishes nothing: start it with --bootstrap-servers "
                "(or PODIUM_BOOTSTRAP_SERVERS) to trigger and cancel",
            )
        async with self._starting:
            if self._client is None:
                client = Client(self.bootstrap_servers, self.settings)
                try:
                    await prepare_topics(self.bootstrap_servers, self.settings, self.task_types)
                    await client.__aenter__()
                except (KafkaError, OSError) as error:
                    with contextlib.suppress(Exception):  # what did start, stops
                        await client.__aexit__(None, None, None)
                    raise Refused(503, f"cannot reach Kafka: {error}") from None
                self._client = client
        return self._client
