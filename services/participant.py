"""The choreography participant: a task service with no conductor.

It consumes the workflow triggers and the outcome events of its partitions
(group `podium.choreo.<service>`, range assignment so each member owns the same
partition number of both topics), keeps a `Join` per workflow, and runs its own
tasks when `services.join` says they are ready. Join state is persisted to a
co-partitioned changelog before the input offsets are committed, and restored
on assignment, as the conductor does; retry timers live in it.

    getmany(triggers, outcomes) -> decode (bad -> dead-letter) -> join rules
      -> start handlers; send changelog snapshots -> ack -> commit
    handler done -> outcome event + changelog snapshot -> ack
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError

from events import (
    CloudEvent,
    ErrorInfo,
    TaskCommand,
    TaskFailed,
    TaskSkipped,
    TaskSucceeded,
    WorkflowTriggered,
    encode,
    new_event,
    topics,
)
from podium.changelog import restore
from podium.commits import AckedCommits
from podium.kafka import ContiguousReader, ensure_topics, make_consumer, make_producer
from podium.outbox import Outbox, end_batch, handle, seal_and_drain
from podium.settings import Settings
from services import join as rules
from services.execute import execute
from services.join import Join, Report, Retry, Run
from services.service import TaskService
from workflow import machine
from workflow.catalog import Catalog, UnknownWorkflow
from workflow.definition import Definition
from workflow.states import TaskStatus as S

log = logging.getLogger("podium.choreography")

MODE = "choreography"


class Participant:
    def __init__(
        self,
        service: TaskService,
        catalog: Catalog,
        bootstrap_servers: str,
        settings: Settings,
        *,
        only: str | None = None,
    ) -> None:
        self.service = service
        #: one-shot (`podium run`): this workflow only, in a group of its own, reading from
        #: the end and restoring nothing, so a live deployment on the same broker is untouched
        self.only = only
        self.catalog = catalog
        self.bootstrap_servers = bootstrap_servers
        self.settings = settings
        self.types = set(service.task_types)
        self.source = f"podium/service/{service.name}"
        self.changelog = topics.choreography_changelog(service.name)
        self.ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._joins: dict[str, tuple[int, Join]] = {}
        self._owned: set[int] = set()
        self._timers: list[tuple[float, str, str, bool]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._executor = ThreadPoolExecutor(max_workers=min(settings.concurrency, 64))
        self._producer = make_producer(bootstrap_servers)
        self._consumer = make_consumer(
            bootstrap_servers,
            group_id=f"podium.choreo.{service.name}" + (f".only.{only}" if only else ""),
            settings=settings.consumer,
            partition_assignment_strategy=(RangePartitionAssignor,),
            auto_offset_reset="latest" if only else "earliest",
        )
        self._commits = AckedCommits(self._consumer)
        self._outbox = Outbox(self._producer, self.changelog)
        self._reader = ContiguousReader(self._consumer)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        await ensure_topics(
            self.bootstrap_servers,
            [
                topics.TRIGGERS,
                topics.WORKFLOWS,
                self.changelog,
                topics.DEAD_LETTER,
                *topics.task_topics(self.catalog.task_types),
            ],
            self.settings.partitions,
        )
        watched = rules.watched_types(self.catalog, self.types)
        inputs = [topics.TRIGGERS, *(topics.outcomes(t) for t in sorted(watched))]
        self._consumer.subscribe(inputs, listener=_Listener(self))
        await self._producer.start()
        await self._consumer.start()
        try:
            while not self._stopping.is_set():
                self._backpressure()
                batch = await self._reader.getmany(timeout_ms=self._poll_timeout_ms())
                await self._process(batch)
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)
            await self._seal_and_drain()
        finally:
            await self._consumer.stop()
            await self._producer.stop()
            self._executor.shutdown(wait=False)
            log.info("participant %s stopped", self.service.name)

    def _backpressure(self) -> None:
        """Stop fetching while every handler slot is busy; polling goes on (the session lives)."""
        if len(self._running) >= self.settings.concurrency:
            self._consumer.pause(*self._consumer.assignment())
        elif self._consumer.paused():
            self._consumer.resume(*self._consumer.paused())

    def _poll_timeout_ms(self) -> int:
        if not self._timers:
            return 100
        return max(0, min(100, int((self._timers[0][0] - time.time()) * 1000)))

    async def _process(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        now = time.time()
        route = functools.partial(self._route, now=now)
        for records in batch.values():
            for record in records:
                handle(record, route, self._outbox, (UnknownWorkflow,))
        self._fire_timers(now)
        await end_batch(self._outbox, self._commits, batch, self._snapshot)

    async def _seal_and_drain(self) -> None:
        await seal_and_drain(self._outbox, self._commits, self._snapshot)

    # -- inputs ---------------------------------------------------------------------

    def _route(self, partition: int, event: CloudEvent, now: float) -> None:
        if self.only is not None and event.workflowid != self.only:
            return
        data = event.data
        if isinstance(data, WorkflowTriggered):
            if data.mode != MODE:
                return  # a conductor's workflow
            definition = self.catalog.get(data.workflow, data.version)
            join = self._join(partition, event.workflowid, definition)
            if join is not None:
                self._apply(partition, join, rules.on_trigger(definition, join, data.input), now)
        elif isinstance(data, TaskSucceeded | TaskFailed | TaskSkipped):
            if data.mode != MODE:
                return  # an orchestrated workflow's outcome: its conductor's business
            definition = self.catalog.get(data.workflow, data.version)
            join = self._join(partition, event.workflowid, definition)
            if join is None or (not data.compensation and data.task_id in join.tasks):
                return  # not ours, or our own outcome coming back
            status, output, retryable = _observed(data)
            actions = rules.on_observed(
                definition,
                join,
                data.task_id,
                status,
                output,
                attempt=data.attempt,
                retryable=retryable,
                compensation=data.compensation,
            )
            self._apply(partition, join, actions, now)

    def _join(self, partition: int, workflow_id: str, definition: Definition) -> Join | None:
        found = self._joins.get(workflow_id)
        if found is not None:
            return found[1]
        tasks, comps = rules.owned(definition, self.types)
        if not tasks and not comps:
            return None  # this service plays no part in that workflow
        join = rules.new_join(definition, workflow_id, self.types)
        self._joins[workflow_id] = (partition, join)
        return join

    def _fire_timers(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, workflow_id, task_id, compensation = heapq.heappop(self._timers)
            found = self._joins.get(workflow_id)
            if found is not None:
                partition, join = found
                self._apply(partition, join, rules.on_retry_due(join, task_id, compensation), now)

    # -- actions --------------------------------------------------------------------

    def _apply(self, partition: int, join: Join, actions: list[rules.Action], now: float) -> None:
        self._outbox.changed(join.workflow_id, partition)
        definition = self.catalog.get(join.name, join.version)
        for action in actions:
            if isinstance(action, Run):
                task = asyncio.create_task(self._run(partition, definition, join, action))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            elif isinstance(action, Retry):
                heapq.heappush(
                    self._timers,
                    (action.due, join.workflow_id, action.task_id, action.compensation),
                )
            elif isinstance(action, Report):
                report = self._report(definition, join, action)
                topic = topics.outcomes(definition.task(action.task_id).type)
                self._outbox.emit(topic, partition, encode(report))

    async def _run(self, partition: int, definition: Definition, join: Join, run: Run) -> None:
        command = _command(definition, join, run)
        registration = self.service.handlers[command.task_type]
        async with self._slots:  # a batch may make more tasks ready than there are slots
            outcome = await execute(
                registration,
                command,
                join.workflow_id,
                self._executor,
                max_output_bytes=self.settings.max_output_bytes,
            )
        status = S.SUCCEEDED if isinstance(outcome, TaskSucceeded) else S.FAILED
        retryable = outcome.error.retryable if isinstance(outcome, TaskFailed) else True
        output = outcome.output if isinstance(outcome, TaskSucceeded) else None
        topic = topics.outcomes(outcome.task_type)
        self._outbox.emit(topic, partition, encode(self._outcome_event(join, outcome)))
        if self._joins.get(join.workflow_id, (None, None))[1] is join:  # still ours
            actions = rules.on_result(
                definition, join, run, status, output, retryable=retryable, now=time.time()
            )
            self._apply(partition, join, actions, time.time())
        try:
            # the outcome now; the join's snapshot goes with the loop's next sealed batch
            await asyncio.gather(*await self._outbox.send(self._snapshot, snapshots=False))
        except KafkaError:
            log.exception("could not publish the outcome of %s", command.command_id)

    def _outcome_event(self, join: Join, outcome: TaskSucceeded | TaskFailed) -> CloudEvent:
        kind = "succeeded" if isinstance(outcome, TaskSucceeded) else "failed"
        return new_event(
            outcome,
            source=self.source,
            workflow_id=join.workflow_id,
            id=f"{outcome.command_id}:{kind}",
            task_id=outcome.task_id,
            attempt=outcome.attempt,
        )

    def _report(self, definition: Definition, join: Join, report: Report) -> CloudEvent:
        spec = definition.task(report.task_id)
        common: dict[str, Any] = {
            "workflow": join.name,
            "version": join.version,
            "command_id": f"{join.workflow_id}:{report.task_id}:1",
            "task_id": report.task_id,
            "task_type": spec.type,
            "attempt": 1,
            "mode": MODE,
        }
        payload: TaskSkipped | TaskFailed
        if report.status == S.SKIPPED:
            payload = TaskSkipped(**common, reason=report.reason)
        else:
            error = ErrorInfo(
                type=report.error_type or "Error", message=report.reason, retryable=False
            )
            payload = TaskFailed(**common, error=error)
        return new_event(
            payload,
            source=self.source,
            workflow_id=join.workflow_id,
            id=f"{common['command_id']}:{report.status.lower()}",
            task_id=report.task_id,
            attempt=1,
        )

    def _snapshot(self, workflow_id: str) -> bytes | None:
        found = self._joins.get(workflow_id)
        return None if found is None else found[1].model_dump_json(exclude_defaults=True).encode()

    # -- partition ownership --------------------------------------------------------

    async def restore(self, partitions: set[int]) -> None:
        new = partitions - self._owned
        if not new or self.only is not None:
            self._owned |= partitions
            return
        restored = await restore(
            self.bootstrap_servers,
            self.changelog,
            new,
            Join.model_validate_json,
            self.settings.consumer,
        )
        self._owned |= new
        self._joins.update(restored)
        now = time.time()
        for partition, join in restored.values():
            try:
                self.catalog.get(join.name, join.version)
            except UnknownWorkflow:
                continue
            self._apply(partition, join, rules.in_flight(join), now)
        log.info(
            "participant %s restored %d workflow(s) of partitions %s",
            self.service.name,
            len(restored),
            sorted(new),
        )

    def revoke(self, partitions: set[int]) -> None:
        self._owned -= partitions
        for workflow_id in [w for w, (p, _) in self._joins.items() if p in partitions]:
            del self._joins[workflow_id]


def _observed(data: TaskSucceeded | TaskFailed | TaskSkipped) -> tuple[S, Any, bool]:
    if isinstance(data, TaskSucceeded):
        return S.SUCCEEDED, data.output, True
    if isinstance(data, TaskSkipped):
        return S.SKIPPED, None, True
    return S.FAILED, None, data.error.retryable


def _command(definition: Definition, join: Join, run: Run) -> TaskCommand:
    core = machine.run_task(
        definition,
        join.workflow_id,
        run.task_id,
        run.attempt,
        run.input,
        compensation=run.compensation,
    )
    return TaskCommand(
        workflow=definition.name,
        version=definition.version,
        command_id=core.command_id,
        task_id=core.task_id,
        task_type=core.task_type,
        attempt=core.attempt,
        input=core.input,
        idempotency_key=core.idempotency_key,
        timeout=core.timeout,
        compensation=core.compensation,
        mode=MODE,
    )


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, participant: Participant) -> None:
        self.participant = participant

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.participant._seal_and_drain()
        self.participant._reader.forget(revoked)
        self.participant.revoke({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.participant._reader.track(assigned)
        await self.participant.restore({tp.partition for tp in assigned})
        self.participant.ready.set()
