"""Starting workflows and following them to their end, over Kafka.

`Watcher` reads the workflow lifecycle topic from its end and resolves one
future per awaited workflow id; start it before triggering so no completion is
missed. tansu's end offsets can be too small after batched produces, which only
means older records are read again: they are filtered by workflow id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from podium.events import (
    DecodeError,
    Mode,
    WorkflowCancelRequested,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowTriggered,
    decode,
    encode,
    event_type,
    new_event,
    topics,
)
from podium.runtime.kafka import (
    ContiguousReader,
    create_topics,
    make_consumer,
    make_producer,
    partitions_of,
    raw_record,
    send,
)
from podium.runtime.settings import Settings
from podium.workflow.definition import Definition

log = logging.getLogger("podium.client")

Ended = WorkflowCompleted | WorkflowFailed


class InputRejected(ValueError):
    """A trigger whose input does not match the definition's input schema."""


def result_json(workflow_id: str, ended: Ended) -> dict[str, Any]:
    """The one JSON object `podium run --json` and `trigger --wait --json` print."""
    return {
        "workflow_id": workflow_id,
        "workflow": ended.workflow,
        "version": ended.version,
        "mode": ended.mode,
        "state": ended.state,
        "output": ended.output,
        "error": ended.error.model_dump() if ended.error else None,
        "started_at": ended.started_at,
        "ended_at": ended.ended_at,
        "tasks": {
            task_id: {
                "state": task.state,
                "attempts": task.attempts,
                "output": task.output,
                "error": task.error.model_dump() if task.error else None,
            }
            for task_id, task in ended.tasks.items()
        },
    }


async def prepare_topics(bootstrap_servers: str, settings: Settings, task_types: set[str]) -> None:
    await create_topics(
        bootstrap_servers,
        [
            topics.TRIGGERS,
            topics.WORKFLOWS,
            topics.DEAD_LETTER,
            *topics.task_topics(task_types),
        ],
        settings,
    )


def deployment_topics(task_types: set[str], published: list[str], services: list[str]) -> list[str]:
    """Every topic of a deployment (`podium topics create`): the shared ones, the command
    and outcome topics of every task type, the conductor's, tracker's and gateway's
    changelogs, the choreography changelogs of the named services, and the topics
    `on_complete` publishes to. The roles create what they use too; this makes it explicit."""
    return sorted(
        {
            topics.TRIGGERS,
            topics.WORKFLOWS,
            topics.DEAD_LETTER,
            topics.SCHEDULES,
            topics.CONDUCTOR_CHANGELOG,
            topics.TRACKER_CHANGELOG,
            topics.GATEWAY_CHANGELOG,
            topics.WAITS_CHANGELOG,
            *topics.task_topics(task_types),
            *(topics.choreography_changelog(name) for name in services),
            *published,
        }
    )


#: the `ce_type` of a workflow's end, as its header carries it
ENDS = {WorkflowCompleted.event_type.encode(), WorkflowFailed.event_type.encode()}


class Client:
    """Publishes triggers and awaits workflow ends."""

    def __init__(self, bootstrap_servers: str, settings: Settings) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.settings = settings
        self._producer = make_producer(
            bootstrap_servers, enable_idempotence=settings.idempotent_producer
        )
        self._consumer = make_consumer(bootstrap_servers, group_id=None, settings=settings.consumer)
        self._waiting: dict[str, asyncio.Future[Ended]] = {}
        self._reading: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Client:
        await self._producer.start()
        await self._consumer.start()
        partitions = await partitions_of(self._consumer, topics.WORKFLOWS)
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        self._reader = ContiguousReader(self._consumer)
        await self._reader.track(partitions)  # resolves the lazy "end" position before a trigger
        self._reading = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        await self._consumer.stop()
        await self._producer.stop()

    def expect(self, workflow_id: str) -> asyncio.Future[Ended]:
        future = self._waiting.get(workflow_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[workflow_id] = future
        return future

    async def trigger(
        self,
        definition: Definition,
        input: dict[str, Any],
        *,
        workflow_id: str | None = None,
        mode: Mode = Mode.ORCHESTRATION,
        wait: bool = True,
        source: str = "podium/client",
    ) -> str:
        """Validate the input, publish the trigger; with `wait`, until the broker acks it.

        `source` is the CloudEvent's; `ONESHOT_SOURCE` marks a `podium run`'s trigger.
        """
        problems = definition.input_errors(input)
        if problems:
            raise InputRejected("; ".join(problems))
        workflow_id = workflow_id or uuid.uuid4().hex
        self.expect(workflow_id)
        payload = WorkflowTriggered(
            workflow=definition.name, version=definition.version, input=input, mode=mode
        )
        event = new_event(payload, source=source, workflow_id=workflow_id)
        ack = await send(self._producer, topics.TRIGGERS, encode(event))
        if wait:
            await ack
        return workflow_id

    async def cancel(
        self, workflow_id: str, workflow: str, version: int, *, reason: str = "", wait: bool = True
    ) -> None:
        """Ask the workflow's conductor (or tracker) to cancel it; `expect` awaits its end."""
        payload = WorkflowCancelRequested(workflow=workflow, version=version, reason=reason)
        event = new_event(payload, source="podium/client", workflow_id=workflow_id)
        ack = await send(self._producer, topics.TRIGGERS, encode(event))
        if wait:
            await ack

    async def flush(self) -> None:
        await self._producer.flush()

    async def _read(self) -> None:
        while True:
            batch = await self._reader.getmany(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    future = self._waiting.get(record.key.decode() if record.key else "")
                    if future is None or future.done() or event_type(record.headers) not in ENDS:
                        continue  # the started announcement, too, is not decoded
                    try:
                        event = decode(raw_record(record))
                    except DecodeError as error:
                        log.debug("ignoring %s", error)
                        continue
                    if isinstance(event.data, WorkflowCompleted | WorkflowFailed):
                        future.set_result(event.data)
