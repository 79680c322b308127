"""The orchestration-mode task worker: commands in, handlers run, outcomes out.

One consumer group per service (`podium.service.<name>`) over the command
topics of its task types; scale by starting more processes. The loop:

    getmany (at most as many records as free handler slots)
      -> decode (undecodable -> dead-letter topic)
      -> what the ledger says (`services.deliveries`): answer a finished command
         with its recorded outcome, give up on one that killed the service
         `max_deliveries` times, run one that was in flight at crashes alone
      -> publish a start marker per command
      -> run each handler in its own task once its marker is acknowledged
      -> publish the outcome, wait for the broker's ack
      -> mark the offset finished; commit the contiguous finished prefix

When every slot stays busy the partitions are paused and the loop keeps polling,
so the group session lives on however long the handlers take. On assignment the
worker reads the tail of its outcome partitions (the ledger) and of the
workflow lifecycle partitions (commands of workflows that have ended are
skipped).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from podium import logs, metrics
from podium.events import (
    CloudEvent,
    DecodeError,
    TaskCommand,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowCompleted,
    WorkflowFailed,
    dead_letter,
    decode,
    encode,
    topics,
)
from podium.runtime.cache import BoundedCache
from podium.runtime.changelog import read_events
from podium.runtime.commits import commit_owned
from podium.runtime.kafka import (
    Consumer,
    ContiguousReader,
    create_topics,
    make_consumer,
    make_producer,
    raw_record,
    send,
)
from podium.runtime.offsets import OffsetTracker
from podium.runtime.settings import Settings
from podium.runtime.slots import a_slot_frees
from podium.services.deliveries import WINDOW, Ledger
from podium.services.execute import execute, failure, outcome_event, started
from podium.services.service import TaskService

log = logging.getLogger("podium.service")

Outcome = TaskSucceeded | TaskFailed

#: ended workflows a worker remembers (read from the lifecycle topic on assignment)
ENDED_WORKFLOWS = 100_000


@dataclass(frozen=True, slots=True)
class _Job:
    """A command about to run."""

    tp: TopicPartition
    offset: int
    event: CloudEvent
    command: TaskCommand


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
        #: seconds between offset commits (each one is a broker round trip)
        self._commit_interval = settings.commit_interval_ms / 1000
        self._committing: asyncio.Task[None] | None = None
        self._ledger = Ledger(settings.max_deliveries)
        #: command ids of the batch being collected (a batch can carry one command twice)
        self._collected: set[str] = set()
        self._ended: BoundedCache[str, bool] = BoundedCache(ENDED_WORKFLOWS)
        self._executor = ThreadPoolExecutor(max_workers=min(settings.concurrency, 64))
        # aiokafka clients bind to the running loop: build the worker inside it
        self._producer = make_producer(
            bootstrap_servers, enable_idempotence=settings.idempotent_producer
        )
        self._consumer = make_consumer(
            bootstrap_servers,
            group_id=f"podium.service.{service.name}",
            settings=settings.consumer,
        )
        self._reader = ContiguousReader(self._consumer)
        self._lag = metrics.Lag(f"podium.service.{service.name}", self._reader.lag)

    @property
    def command_topics(self) -> list[str]:
        return [topics.commands(t) for t in self.service.task_types]

    def stop(self) -> None:
        """Stop fetching; `run` drains in-flight handlers, commits and leaves the group."""
        self._stopping.set()

    async def run(self) -> None:
        await create_topics(
            self.bootstrap_servers,
            [*topics.task_topics(self.service.task_types), topics.DEAD_LETTER],
            self.settings,
        )
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

    async def _loop(self, consumer: Consumer) -> None:
        while not self._stopping.is_set():
            free = self._slots - len(self._running)
            if free <= 0:
                if not await a_slot_frees(self._running.values(), self._slots):
                    # slow handlers: stop fetching, but poll, so the group's poll
                    # interval stays alive however long they take
                    consumer.pause(*consumer.assignment())
                    await self._reader.getmany(timeout_ms=0)
                continue
            self._reader.resume()
            batch = await self._reader.getmany(timeout_ms=100, max_records=free)
            self._lag.tick()
            jobs: list[_Job] = []
            self._collected.clear()
            for tp, records in batch.items():
                for record in records:
                    with logs.context(None):  # _dispatch names the workflow once decoded
                        job = await self._dispatch(tp, record)
                    if job is None:
                        continue
                    if self._ledger.verdict(job.command.command_id).action == "run_alone":
                        await self._start(jobs)
                        jobs = []
                        await self._run_alone(job)
                    else:
                        jobs.append(job)
            await self._start(jobs)
            due = time.monotonic() - self._last_commit >= self._commit_interval
            if due and (self._committing is None or self._committing.done()):
                # in the background: a commit under load takes longer than a batch
                self._committing = asyncio.create_task(self._commit())

    async def _dispatch(
        self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]
    ) -> _Job | None:
        """Answer, skip or dead-letter the record; or return the job of running it."""
        self._offsets.started(tp, record.offset)
        try:
            event = decode(raw_record(record))
            if not isinstance(event.data, TaskCommand):
                raise DecodeError(
                    f"a {event.type} event does not belong on a command topic", raw_record(record)
                )
        except DecodeError as error:
            log.warning("dead-lettering %s", error)
            metrics.dead_lettered(tp.topic)
            topic, dead = dead_letter(error)
            self._finish_after(tp, record.offset, await send(self._producer, topic, dead))
            return None
        command = event.data
        logs.bind(event.workflowid, command.task_id)
        verdict = self._ledger.verdict(command.command_id)
        if verdict.outcome is not None:  # a redelivery of work already done: answer, don't rerun
            ack = await self._publish(tp.partition, event, verdict.outcome)
            self._finish_after(tp, record.offset, ack)
        elif command.command_id in self._running or command.command_id in self._collected:
            self._offsets.finished(tp, record.offset)  # the same command, running or about to
        elif self._ended.get(event.workflowid):
            log.info("skipping %s: its workflow has ended", command.command_id)
            self._offsets.finished(tp, record.offset)
        elif verdict.action == "give_up":
            await self._give_up(tp, record, event, command, verdict.starts)
        else:
            self._collected.add(command.command_id)
            return _Job(tp, record.offset, event, command)
        return None

    async def _give_up(
        self,
        tp: TopicPartition,
        record: ConsumerRecord[bytes, bytes],
        event: CloudEvent,
        command: TaskCommand,
        starts: int,
    ) -> None:
        """A command that killed the service `max_deliveries` times: fail it, dead-letter it."""
        message = self._ledger.poison_message(starts)
        log.error("giving up on %s: %s", command.command_id, message)
        outcome = failure(command, "PoisonCommand", message, retryable=False)
        self._ledger.finished(outcome)
        topic, dead = dead_letter(DecodeError(f"PoisonCommand: {message}", raw_record(record)))
        metrics.dead_lettered(tp.topic)
        await send(self._producer, topic, dead)
        self._finish_after(tp, record.offset, await self._publish(tp.partition, event, outcome))

    async def _start(self, jobs: list[_Job]) -> list[asyncio.Task[None]]:
        """Publish a start marker per job and run each handler once its marker is acknowledged.

        The marker is what counts a start that kills the service (the ledger's
        poison rule), so no handler runs before its marker is on the broker. Each
        job waits for its own ack in its own task: the loop goes on fetching.
        """
        tasks = []
        for job in jobs:
            marker = await self._publish(job.tp.partition, job.event, started(job.command))
            task = asyncio.create_task(self._run(job, marker))
            self._running[job.command.command_id] = task
            tasks.append(task)
        return tasks

    async def _run_alone(self, job: _Job) -> None:
        """A command in flight at earlier crashes runs with nothing beside it: if it kills the
        service again, it alone is counted."""
        log.warning(
            "running %s alone: it was in flight when the service died", job.command.command_id
        )
        if self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)
        await asyncio.gather(*await self._start([job]))

    async def _run(self, job: _Job, marker: asyncio.Future[Any]) -> None:
        tp, offset, event, command = job.tp, job.offset, job.event, job.command
        logs.bind(event.workflowid, command.task_id)  # this task's own context
        try:
            await marker
        except KafkaError:
            log.exception("could not mark %s started; it comes again", command.command_id)
            self._running.pop(command.command_id, None)
            return
        self._ledger.started(command.command_id)
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
                    traceparent=event.traceparent,
                    queued_since=event.time.timestamp(),
                )
            await (await self._publish(tp.partition, event, outcome))
            self._ledger.finished(outcome)
            self._offsets.finished(tp, offset)
        except KafkaError:
            # not acknowledged: leave the offset unfinished so the command is redelivered
            log.exception("could not publish the outcome of %s", command.command_id)
        finally:
            self._running.pop(command.command_id, None)

    async def _publish(
        self, partition: int, cause: CloudEvent, outcome: Outcome | TaskStarted
    ) -> asyncio.Future[Any]:
        """The outcome goes to its type's topic, on the partition its command came from."""
        reply = outcome_event(outcome, cause.workflowid, self.source, cause)
        return await send(
            self._producer, topics.outcomes(outcome.task_type), encode(reply), partition
        )

    def _finish_after(self, tp: TopicPartition, offset: int, ack: asyncio.Future[Any]) -> None:
        def done(future: asyncio.Future[Any]) -> None:
            if not future.cancelled() and future.exception() is None:
                self._offsets.finished(tp, offset)

        ack.add_done_callback(done)

    async def load(self, assigned: set[TopicPartition]) -> None:
        """Read the tails of the partitions this worker writes and needs: its ledger."""
        types = {topics.commands(t): t for t in self.service.task_types}
        numbers: dict[str, set[int]] = {}
        for tp in assigned:
            numbers.setdefault(types[tp.topic], set()).add(tp.partition)
        for task_type, partitions in numbers.items():
            async for event in read_events(
                self.bootstrap_servers,
                topics.outcomes(task_type),
                partitions,
                self.settings.consumer,
                last=WINDOW,
            ):
                self._ledger.observe(event.data)
        every = {tp.partition for tp in assigned}
        async for event in read_events(
            self.bootstrap_servers, topics.WORKFLOWS, every, self.settings.consumer, last=WINDOW
        ):
            if isinstance(event.data, WorkflowCompleted | WorkflowFailed):
                self._ended.put(event.workflowid, True)

    async def _commit(self) -> None:
        self._last_commit = time.monotonic()
        await commit_owned(self._consumer, self._offsets.committable())

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
        async with self.worker._reader.restoring(assigned):
            await self.worker.load(assigned)
        log.info("service %s assigned %d partition(s)", self.worker.service.name, len(assigned))
        self.worker.ready.set()
