"""The choreography participant: a task service with no conductor.

It consumes the workflow triggers and the outcome events of its partitions
(group `podium.choreo.<service>`, range assignment so each member owns the same
partition number of both topics), keeps a `Join` per workflow, and runs its own
tasks when `services.join` says they are ready. Join state is persisted to a
co-partitioned changelog before the input offsets are committed, and restored
on assignment, as the conductor does; retry timers live in it.

    getmany(triggers, outcomes) -> decode (bad -> dead-letter) -> join rules
      -> start handlers; send changelog snapshots -> ack -> commit
    handler: start marker -> ack -> run -> outcome event -> ack
             (its join's snapshot goes with the loop's next sealed batch)

After a crash the tail of its own outcome partitions (`services.deliveries`)
says which restored attempts already ended (their outcome is taken, the handler
does not run again) and which keep killing the service (run alone, then given
up). A join with nothing left to do (`join.settled`) leaves memory `retention_s`
later; a small "ended" record stays in the changelog so the workflow id never
starts again here, for `ended_retention_s` (settings). Beyond `HOT_JOINS` joins, the
least recently used wait as their JSON (`podium.runtime.owned`): a burst of 50,000
workflows holds 50,000 joins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiokafka.errors import KafkaError

from podium import logs
from podium.events import (
    CloudEvent,
    ErrorInfo,
    Mode,
    TaskCommand,
    TaskFailed,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
    WorkflowCancelAccepted,
    WorkflowTriggered,
    encode,
    topics,
)
from podium.runtime.cache import BoundedCache
from podium.runtime.changelog import read_events, restore
from podium.runtime.kafka import (
    send,
)
from podium.runtime.loop import BaseProcessor, Loop, Spec
from podium.runtime.outbox import Refused
from podium.runtime.owned import Owned
from podium.runtime.settings import Settings
from podium.runtime.slots import a_slot_frees
from podium.runtime.timers import Timers
from podium.services import snapshot
from podium.services.deliveries import WINDOW, Ledger
from podium.services.execute import execute, failure, outcome_event, started
from podium.services.service import TaskService
from podium.workflow import join as rules
from podium.workflow import machine
from podium.workflow.catalog import Catalog, UnknownWorkflow
from podium.workflow.definition import Definition
from podium.workflow.failures import INPUT_ERROR
from podium.workflow.join import Join, Report, Retry, Run
from podium.workflow.messages import Step
from podium.workflow.states import TaskStatus as S

log = logging.getLogger("podium.choreography")

MODE = Mode.CHOREOGRAPHY
#: the timer "task ids" that evict a settled join, and then forget its workflow id
EVICT = "podium:evict"
FORGET = "podium:forget"
#: joins kept decoded at most; the least recently used others wait as their JSON (a
#: fifth of the memory or less), decoded again when an event reaches them
HOT_JOINS = 2_000


class Participant(BaseProcessor):
    #: more co-partitioned inputs a subclass routes (the gateway's: workflow ends)
    also_reads: tuple[str, ...] = ()

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
        #: workflow id -> (partition, mode, join) for the partitions this process owns
        self._joins: Owned[Join] = Owned(HOT_JOINS, Join)
        self._owned: set[int] = set()
        #: partition -> how often it was revoked: a handler's result counts only if its
        #: partition stayed ours (a join restored anew re-runs what was in flight)
        self._revoked: dict[int, int] = {}
        #: (due, workflow id, (task id or EVICT or FORGET, compensation))
        self._timers: Timers[tuple[str, bool]] = Timers()
        self._running: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._executor = ThreadPoolExecutor(max_workers=min(settings.concurrency, 64))
        watched = rules.watched_types(catalog, self.types)
        spec = Spec(
            name=f"participant {service.name}",
            group=f"podium.choreo.{service.name}",
            inputs=[
                topics.TRIGGERS,
                *(topics.outcomes(t) for t in sorted(watched)),
                *self.also_reads,
            ],
            topics=topics.of_stateful_consumer(self.changelog, catalog.task_types),
            changelog=self.changelog,
            rejected=(UnknownWorkflow,),
            only=only,
            ignored=frozenset({TaskStarted.event_type}),
        )
        self.loop = Loop(spec, self, bootstrap_servers, settings)
        self.ready = self.loop.ready
        self._outbox = self.loop.outbox
        self._producer = self.loop.producer
        self._ledger = Ledger(settings.max_deliveries)
        #: workflow id -> (partition, end time) of joins evicted: the id never starts again
        self._ended: BoundedCache[str, tuple[int, float]] = BoundedCache(
            settings.ended_ids, self._tombstone
        )
        self._evicting: set[str] = set()
        #: held while a suspect attempt runs alone (see `services.deliveries`)
        self._alone = asyncio.Lock()

    def stop(self) -> None:
        self.loop.stop()

    async def run(self) -> None:
        try:
            await self.loop.run()
        finally:
            self._executor.shutdown(wait=False)

    # -- the processor ----------------------------------------------------------------

    async def before_poll(self) -> None:
        """Stop fetching while every handler slot stays busy (`podium.runtime.slots`);
        polling goes on, so the session lives."""
        consumer = self.loop.consumer
        if not await a_slot_frees(self._running, self.settings.concurrency):
            consumer.pause(*consumer.assignment())
        elif consumer.paused():
            self.loop.reader.resume()

    def next_due(self) -> float | None:
        return self._timers.next_due()

    async def drain(self) -> None:
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    # -- inputs ---------------------------------------------------------------------

    def route(self, partition: int, event: CloudEvent, now: float) -> None:
        if self.only is not None and event.workflowid != self.only:
            return
        data = event.data
        if isinstance(data, WorkflowTriggered):
            if data.mode != MODE:
                return  # a conductor's workflow
            definition = self.catalog.get(data.workflow, data.version)
            problems = definition.input_errors(data.input)
            if problems:  # the tracker refuses it too, and answers for it: nothing runs
                raise Refused(f"input rejected: {'; '.join(problems)}", INPUT_ERROR)
            join = self._join(partition, event.workflowid, definition)
            if join is not None:
                self._apply(partition, join, rules.on_trigger(definition, join, data.input), now)
        elif isinstance(data, WorkflowCancelAccepted):
            found = self._joins.get(event.workflowid)
            if data.mode != MODE or found is None:
                return  # a conductor's workflow, or one this service has no part in (now)
            join = found[2]
            definition = self.catalog.get(join.name, join.version)
            self._apply(partition, join, rules.on_cancel(definition, join), now)
        elif isinstance(data, TaskSucceeded | TaskFailed | TaskSkipped):
            if data.mode != MODE:
                return  # an orchestrated workflow's outcome: its conductor's business
            definition = self.catalog.get(data.workflow, data.version)
            join = self._join(partition, event.workflowid, definition)
            if join is None or (not data.compensation and data.task_id in join.tasks):
                return  # not ours, or our own outcome coming back
            status, output, retryable = _observed(data)
            step = Step(data.task_id, data.compensation)
            actions = rules.on_observed(
                definition, join, step, status, output, attempt=data.attempt, retryable=retryable
            )
            self._apply(partition, join, actions, now)

    def _join(self, partition: int, workflow_id: str, definition: Definition) -> Join | None:
        found = self._joins.get(workflow_id)
        if found is not None:
            return found[2]
        if self._ended.get(workflow_id) is not None:
            return None  # settled and evicted: a repeated trigger or a late duplicate
        tasks, comps = rules.owned(definition, self.types)
        if not tasks and not comps:
            return None  # this service plays no part in that workflow
        join = rules.new_join(definition, workflow_id, self.types)
        self._joins[workflow_id] = (partition, MODE, join)
        return join

    def fire(self, now: float) -> None:
        for workflow_id, (task_id, compensation) in self._timers.due(now):
            found = self._joins.get(workflow_id)
            if task_id == FORGET:
                ended = self._ended.pop(workflow_id)
                if ended is not None and found is None:
                    self._tombstone(workflow_id, ended)
            elif found is None:
                continue
            elif task_id == EVICT:
                self._evict(found[0], found[2], now)
            else:
                partition, _, join = found
                actions = rules.on_retry_due(join, Step(task_id, compensation))
                self._apply(partition, join, actions, now)

    def _evict(self, partition: int, join: Join, now: float) -> None:
        """Forget a settled join; a small "ended" record keeps its id from starting again."""
        self._evicting.discard(join.workflow_id)
        if not rules.settled(self.catalog.get(join.name, join.version), join):
            return  # a late outcome gave it work again: it is evicted when settled anew
        del self._joins[join.workflow_id]
        self._remember(partition, join.workflow_id, now)

    def _remember(self, partition: int, workflow_id: str, ended_at: float) -> None:
        self._ended.put(workflow_id, (partition, ended_at))
        self._outbox.changed(workflow_id, partition)
        self._timers.add(ended_at + self.settings.ended_retention_s, workflow_id, (FORGET, False))
        self._timers.prune(self._knows, len(self._joins) + len(self._ended))

    def _tombstone(self, workflow_id: str, ended: tuple[int, float]) -> None:
        """An ended id forgotten, by age or by count (`ended_ids`): the changelog forgets it too."""
        self._outbox.delete(workflow_id, ended[0])

    def _knows(self, workflow_id: str) -> bool:
        """Whether the id is still here: a join, or remembered as ended."""
        return workflow_id in self._joins or workflow_id in self._ended

    # -- actions --------------------------------------------------------------------

    def _apply(self, partition: int, join: Join, actions: list[rules.Action], now: float) -> None:
        self._outbox.changed(join.workflow_id, partition)
        definition = self.catalog.get(join.name, join.version)
        if join.workflow_id not in self._evicting and rules.settled(definition, join):
            self._evicting.add(join.workflow_id)
            self._timers.add(now + self.settings.retention_s, join.workflow_id, (EVICT, False))
        for action in actions:
            if isinstance(action, Run):
                task = asyncio.create_task(self._run(partition, definition, join, action))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            elif isinstance(action, Retry):
                self._timers.add(
                    action.due, join.workflow_id, (action.task_id, action.compensation)
                )
            elif isinstance(action, Report):
                report = self._report(definition, join, action)
                assert isinstance(report.data, TaskSkipped | TaskFailed)
                topic = topics.outcomes(report.data.task_type)
                self._outbox.emit(topic, partition, encode(report))

    async def _run(self, partition: int, definition: Definition, join: Join, run: Run) -> None:
        asked = time.time()  # queueing: from the decision to run to the handler's start
        revoked = self._revoked.get(partition, 0)
        logs.bind(join.workflow_id, run.task_id)  # this task's own context
        command = _command(definition, join, run)
        topic = topics.outcomes(command.task_type)
        verdict = self._ledger.verdict(command.command_id)
        outcome: TaskSucceeded | TaskFailed | None
        if verdict.outcome is not None:
            outcome = verdict.outcome  # published before a crash: taken, not run again
        elif verdict.action == "give_up":
            message = self._ledger.poison_message(verdict.starts)
            log.error("giving up on %s: %s", command.command_id, message)
            outcome = failure(command, "PoisonCommand", message, retryable=False)
        else:
            async with self._slot(alone=verdict.action == "run_alone"):
                outcome = await self._execute(partition, command, join, asked)
        if outcome is None:
            return  # the start marker did not reach the broker: the next owner runs it
        if verdict.outcome is None:
            self._ledger.finished(outcome)
            self._outbox.emit(topic, partition, encode(self._outcome_event(join, outcome)))
        status = S.SUCCEEDED if isinstance(outcome, TaskSucceeded) else S.FAILED
        retryable = outcome.error.retryable if isinstance(outcome, TaskFailed) else True
        output = outcome.output if isinstance(outcome, TaskSucceeded) else None
        # still ours: looked up again, since it may have waited as JSON meanwhile
        found = self._joins.get(join.workflow_id)
        if found is not None and self._revoked.get(partition, 0) == revoked:
            join = found[2]
            actions = rules.on_result(
                definition, join, run, status, output, retryable=retryable, now=time.time()
            )
            self._apply(partition, join, actions, time.time())
        try:
            # the outcome now; the join's snapshot goes with the loop's next sealed batch
            await asyncio.gather(*await self._outbox.send(self.snapshot, snapshots=False))
        except KafkaError:
            log.exception("could not publish the outcome of %s", command.command_id)

    @contextlib.asynccontextmanager
    async def _slot(self, *, alone: bool) -> AsyncIterator[None]:
        """A handler slot; `alone` takes them all (an attempt in flight at earlier crashes)."""
        if not alone:
            async with self._slots:  # a batch may make more tasks ready than there are slots
                yield
            return
        async with self._alone:
            for _ in range(self.settings.concurrency):
                await self._slots.acquire()
            try:
                yield
            finally:
                for _ in range(self.settings.concurrency):
                    self._slots.release()

    async def _execute(
        self, partition: int, command: TaskCommand, join: Join, asked: float
    ) -> TaskSucceeded | TaskFailed | None:
        """Mark the attempt started (acknowledged), then run its handler."""
        marker = encode(self._outcome_event(join, started(command, with_input=True)))
        try:
            await (
                await send(self._producer, topics.outcomes(command.task_type), marker, partition)
            )
        except KafkaError:
            log.exception("could not mark %s started", command.command_id)
            return None
        self._ledger.started(command.command_id)
        return await execute(
            self.service.handlers[command.task_type],
            command,
            join.workflow_id,
            self._executor,
            max_output_bytes=self.settings.max_output_bytes,
            queued_since=asked,
        )

    def _outcome_event(
        self, join: Join, outcome: TaskStarted | TaskSucceeded | TaskFailed | TaskSkipped
    ) -> CloudEvent:
        return outcome_event(outcome, join.workflow_id, self.source)

    def _report(self, definition: Definition, join: Join, report: Report) -> CloudEvent:
        core = machine.run_task(definition, join.workflow_id, report.step, report.attempt, None)
        common: dict[str, Any] = {
            "workflow": join.name,
            "version": join.version,
            "command_id": core.command_id,
            "task_id": report.task_id,
            "task_type": core.task_type,
            "attempt": report.attempt,
            "compensation": report.compensation,
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
        return self._outcome_event(join, payload)

    def snapshot(self, workflow_id: str) -> bytes | None:
        """The workflow's changelog value (`podium.services.snapshot`); None: nothing known."""
        found = self._joins.get(workflow_id)
        if found is not None:
            return snapshot.encode(found[2])
        ended = self._ended.get(workflow_id)
        return None if ended is None else snapshot.encode(snapshot.Ended(ended[1]))

    # -- partition ownership --------------------------------------------------------

    async def restore(self, partitions: set[int]) -> None:
        new = partitions - self._owned
        if not new or self.only is not None:
            self._owned |= partitions
            return
        restored = await restore(
            self.bootstrap_servers, self.changelog, new, snapshot.decode, self.settings.consumer
        )
        await self._load_ledger(new)
        self._owned |= new
        now = time.time()
        for workflow_id, (partition, entry) in list(restored.items()):
            if isinstance(entry, Join):
                self._joins[workflow_id] = (partition, MODE, entry)
                continue
            del restored[workflow_id]
            if now - entry.at < self.settings.ended_retention_s:
                self._remember(partition, workflow_id, entry.at)
            else:
                self._outbox.delete(workflow_id, partition)
        for workflow_id in restored:
            partition, _, join = self._joins[workflow_id]  # decoded again if it went cold
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

    async def _load_ledger(self, partitions: set[int]) -> None:
        """What this service published on those partitions before: started and finished."""
        # the types a definition uses (a handler no definition uses has no topics)
        for task_type in sorted(self.types & self.catalog.task_types):
            async for event in read_events(
                self.bootstrap_servers,
                topics.outcomes(task_type),
                partitions,
                self.settings.consumer,
                last=WINDOW,
            ):
                if getattr(event.data, "mode", None) == MODE:
                    self._ledger.observe(event.data)

    def revoke(self, partitions: set[int]) -> None:
        self._owned -= partitions
        for partition in partitions:
            self._revoked[partition] = self._revoked.get(partition, 0) + 1
        for workflow_id in self._joins.on(partitions):
            del self._joins[workflow_id]
            self._evicting.discard(workflow_id)
        for workflow_id in [w for w, (p, _) in self._ended.items() if p in partitions]:
            self._ended.pop(workflow_id)
        self._timers.keep(self._knows)


def _observed(data: TaskSucceeded | TaskFailed | TaskSkipped) -> tuple[S, Any, bool]:
    if isinstance(data, TaskSucceeded):
        return S.SUCCEEDED, data.output, True
    if isinstance(data, TaskSkipped):
        return S.SKIPPED, None, True
    return S.FAILED, None, data.error.retryable


def _command(definition: Definition, join: Join, run: Run) -> TaskCommand:
    core = machine.run_task(definition, join.workflow_id, run.step, run.attempt, run.input)
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
