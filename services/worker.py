"""The orchestration-mode task worker: commands in, handlers run, outcomes out.

One consumer group per service (`podium.service.<name>`) over the command
topics of its task types; scale by starting more processes. The loop:

    getmany (at most as many records as free handler slots)
      -> decode (undecodable -> dead-letter topic)
      -> run the handler in its own task (or replay a recorded outcome)
      -> publish the outcome, wait for the broker's ack
      -> mark the offset finished; commit the contiguous finished prefix

When every slot is busy the partitions are paused and the loop keeps polling,
so the group session lives on however long the handlers take.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError

from events import (
    CloudEvent,
    DecodeError,
    TaskCommand,
    TaskFailed,
    TaskSucceeded,
    dead_letter,
    decode,
    encode,
    new_event,
    topics,
)
from podium.cache import BoundedCache
from podium.kafka import (
    ContiguousReader,
    ensure_topics,
    make_consumer,
    make_producer,
    raw_record,
    send,
)
from podium.settings import Settings
from services.execute import execute, failure
from services.offsets import OffsetTracker
from services.service import TaskService

log = logging.getLogger("podium.service")

Outcome = TaskSucceeded | TaskFailed

#: how many completed commands a worker remembers to answer redeliveries
REDELIVERY_WINDOW = 10_000
#: seconds between offset commits (each one is a broker round trip)
COMMIT_INTERVAL = 0.05


class Worker:
    def __init__(self, service: TaskService, bootstrap_servers: str, settings: Settings) -> None:
        if not service.handlers:
            raise ValueError(f"service {service.name!r} registers no task handler")
        self.service = service
        self.bootstrap_servers = bootstrap_servers
        self.settings = settings
        self.source = f"podium/service/{service.name}"
        self.ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._slots = settings.concurrency
        self._running: dict[str, asyncio.Task[None]] = {}
        self._offsets = OffsetTracker()
        self._last_commit = time.monotonic()
        self._committing: asyncio.Task[None] | None = None
        self._recorded: BoundedCache[str, Outcome] = BoundedCache(REDELIVERY_WINDOW)
        self._executor = ThreadPoolExecutor(max_workers=min(settings.concurrency, 64))
        # aiokafka clients bind to the running loop: build the worker inside it
        self._producer = make_producer(bootstrap_servers)
        self._consumer = make_consumer(
            bootstrap_servers,
            group_id=f"podium.service.{service.name}",
            settings=settings.consumer,
        )

    @property
    def command_topics(self) -> list[str]:
        return [topics.commands(t) for t in self.service.task_types]

    def stop(self) -> None:
        """Stop fetching; `run` drains in-flight handlers, commits and leaves the group."""
        self._stopping.set()

    async def run(self) -> None:
        await ensure_topics(
            self.bootstrap_servers,
            [*topics.task_topics(self.service.task_types), topics.DEAD_LETTER],
            self.settings.partitions,
        )
        self._reader = ContiguousReader(self._consumer)
        self._consumer.subscribe(self.command_topics, listener=_Listener(self))
        await self._producer.start()
        await self._consumer.start()
        try:
            await self._loop(self._consumer)
            await self._drain()
        finally:
            await self._consumer.stop()  # leaves the group
            await self._producer.stop()
            self._executor.shutdown(wait=False)
            log.info("service %s stopped", self.service.name)

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            free = self._slots - len(self._running)
            if free <= 0:
                consumer.pause(*consumer.assignment())
                await self._reader.getmany(timeout_ms=100)  # keeps the poll interval alive
                continue
            consumer.resume(*consumer.paused())
            batch = await self._reader.getmany(timeout_ms=100, max_records=free)
            for tp, records in batch.items():
                for record in records:
                    await self._dispatch(tp, record)
            due = time.monotonic() - self._last_commit >= COMMIT_INTERVAL
            if due and (self._committing is None or self._committing.done()):
                # in the background: a commit under load takes longer than a batch
                self._committing = asyncio.create_task(self._commit())

    async def _dispatch(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> None:
        self._offsets.started(tp, record.offset)
        try:
            event = decode(raw_record(record))
            if not isinstance(event.data, TaskCommand):
                raise DecodeError(
                    f"a {event.type} event does not belong on a command topic", raw_record(record)
                )
        except DecodeError as error:
            log.warning("dead-lettering %s", error)
            topic, dead = dead_letter(error)
            self._finish_after(tp, record.offset, await send(self._producer, topic, dead))
            return
        command = event.data
        recorded = self._recorded.get(command.command_id)
        if recorded is not None:  # a redelivery of work already done: answer, don't rerun
            ack = await self._publish(tp.partition, event, recorded)
            self._finish_after(tp, record.offset, ack)
        elif command.command_id in self._running:  # the same command, still running
            self._offsets.finished(tp, record.offset)
        else:
            task = asyncio.create_task(self._run(tp, record.offset, event, command))
            self._running[command.command_id] = task

    async def _run(
        self, tp: TopicPartition, offset: int, event: CloudEvent, command: TaskCommand
    ) -> None:
        try:
            registration = self.service.handlers.get(command.task_type)
            if registration is None:  # a command whose type does not match its topic
                message = f"service {self.service.name} has no handler for {command.task_type}"
                outcome: Outcome = failure(command, "UnknownTaskType", message, retryable=False)
            else:
                outcome = await execute(
                    registration,
                    command,
                    event.workflowid,
                    self._executor,
                    max_output_bytes=self.settings.max_output_bytes,
                )
            await (await self._publish(tp.partition, event, outcome))
            self._recorded.put(command.command_id, outcome)
            self._offsets.finished(tp, offset)
        except KafkaError:
            # not acknowledged: leave the offset unfinished so the command is redelivered
            log.exception("could not publish the outcome of %s", command.command_id)
        finally:
            self._running.pop(command.command_id, None)

    async def _publish(
        self, partition: int, cause: CloudEvent, outcome: Outcome
    ) -> asyncio.Future[Any]:
        """The outcome goes to its type's topic, on the partition its command came from."""
        kind = "succeeded" if isinstance(outcome, TaskSucceeded) else "failed"
        reply = new_event(
            outcome,
            source=self.source,
            workflow_id=cause.workflowid,
            id=f"{outcome.command_id}:{kind}",
            task_id=outcome.task_id,
            attempt=outcome.attempt,
            correlation_id=cause.correlationid,
            causation_id=cause.id,
            traceparent=cause.traceparent,
        )
        return await send(
            self._producer, topics.outcomes(outcome.task_type), encode(reply), partition
        )

    def _finish_after(self, tp: TopicPartition, offset: int, ack: asyncio.Future[Any]) -> None:
        def done(future: asyncio.Future[Any]) -> None:
            if not future.cancelled() and future.exception() is None:
                self._offsets.finished(tp, offset)

        ack.add_done_callback(done)

    async def _commit(self) -> None:
        self._last_commit = time.monotonic()
        self._committing: asyncio.Task[None] | None = None
        consumer = self._consumer
        moved = self._offsets.committable()
        owned = consumer.assignment()
        offsets = {tp: offset for tp, offset in moved.items() if tp in owned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:  # a rebalance: the records come again
            log.warning("commit failed (%s); the records will be redelivered", exc)

    async def _drain(self) -> None:
        if self._running:
            log.info("draining %d in-flight task(s)", len(self._running))
            await asyncio.gather(*self._running.values(), return_exceptions=True)
        await self._producer.flush()
        if self._committing is not None:
            await self._committing
        await self._commit()


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if self.worker._committing is not None:
            await self.worker._committing
        await self.worker._commit()
        self.worker._offsets.forget(set(revoked))
        self.worker._reader.forget(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.worker._reader.track(assigned)
        log.info("service %s assigned %d partition(s)", self.worker.service.name, len(assigned))
        self.worker.ready.set()
