"""A driver that speaks only Podium's wire contract, as a service in another language would.

It imports nothing of Podium's: a trigger is a CloudEvent in the Kafka binary binding
(`ce_*` headers, JSON data, keyed by the workflow id) published with plain aiokafka on
`podium.triggers`, and a workflow's end is read from `podium.workflows` by its
`ce_type` header and JSON data. `benchmarks/run.py --driver wire` drives the Podium
systems with it in place of `podium.client.Client`; it has the two methods they use.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

TRIGGERS = "podium.triggers"
WORKFLOWS = "podium.workflows"
ENDED = {b"podium.workflow.completed", b"podium.workflow.failed"}


class WireClient:
    def __init__(self, bootstrap_servers: str, fetch_max_wait_ms: int) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=0)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=fetch_max_wait_ms,
        )
        self._waiting: dict[bytes, asyncio.Future[SimpleNamespace]] = {}
        self._reading: asyncio.Task[None] | None = None

    async def __aenter__(self) -> WireClient:
        await self._producer.start()
        await self._consumer.start()
        numbers = await self._producer.partitions_for(WORKFLOWS)  # waits for the metadata
        partitions = [TopicPartition(WORKFLOWS, n) for n in sorted(numbers)]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the lazy "end" before the first trigger
            await self._consumer.position(tp)
        self._reading = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        await self._consumer.stop()
        await self._producer.stop()

    def expect(self, workflow_id: str) -> asyncio.Future[SimpleNamespace]:
        return self._waiting.setdefault(
            workflow_id.encode(), asyncio.get_running_loop().create_future()
        )

    async def trigger(
        self,
        definition: Any,
        input: dict[str, Any],
        *,
        workflow_id: str,
        wait: bool = False,
        mode: str = "orchestration",
    ) -> str:
        self.expect(workflow_id)
        key = workflow_id.encode()
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", uuid.uuid4().hex.encode()),
            ("ce_source", b"benchmarks/wire-driver"),
            ("ce_type", b"podium.workflow.triggered"),
            ("ce_time", datetime.now(UTC).isoformat().encode()),
            ("ce_workflowid", key),
            ("content-type", b"application/json"),
        ]
        data = {
            "workflow": definition.name,
            "version": definition.version,
            "input": input,
            "mode": mode,
        }
        ack = await self._producer.send(TRIGGERS, orjson.dumps(data), key=key, headers=headers)
        if wait:
            await ack
        return workflow_id

    async def _read(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    future = self._waiting.get(record.key or b"")
                    if future is None or future.done():
                        continue
                    if dict(record.headers).get("ce_type") in ENDED:
                        future.set_result(SimpleNamespace(**orjson.loads(record.value)))
