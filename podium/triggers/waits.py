"""Wait tasks: a task the outside world completes, not a service.

A `wait_for` task's attempt starts like any other. In orchestration the conductor
sends its command on `podium.tasks.podium.wait.commands`, which `WaitWorker` takes;
in choreography the gateway is the participant whose service handles `podium.wait`
(`WaitParticipant`), so it starts the attempt when the task's join is ready, and no
service knows about waits. Either way the attempt, whose input is the workflow's
input, becomes a `Waiting`: `Watcher` reads every partition of the waited-for
topics (from their end, in a group of each gateway process's own: the record may be
on any partition, the wait is held by the owner of its workflow's) and the first
record the task's `match` holds for (`event`: the record, as for a binding;
`workflow`: `id` and `input`) releases it. The gateway then publishes the attempt's
Succeeded outcome with the mapped `output`, the same event a service would publish
(an `output` that fails to evaluate: a Failed one, not retryable).

- The usual timeout and retry apply. In orchestration the conductor's timer fails an
  attempt and sends the next one; the gateway forgets a wait at its deadline (the
  command's time plus its timeout), and a Succeeded of an older attempt would be
  ignored by its attempt number. In choreography the gateway's participant fails the
  attempt at its deadline (a Timeout, retryable) and retries it by the task's policy.
- Records are kept: the last `KEEP` records of each waited-for topic, so that one that
  came before its task was Running releases it when it starts. On (re)start the
  gateway reads those back from the topic itself (the last `KEEP` of each partition it
  is assigned), so nothing is written to keep them and a restart loses none.
- Waiting attempts survive a restart: orchestration's in the compacted
  `podium.gateway.waits.changelog` (key `<workflow id>/<task id>`), choreography's in
  the participant's join state (a restore starts the attempts in flight again, their
  timeout from the restore). A match the gateway took but had not published when it
  died is found again among the records read back.
- A workflow's end (`podium.workflows`: failed elsewhere, timed out, cancelled) drops
  its waits, so a wait with no timeout never outlives its workflow; an end read
  before the wait's command or start (another topic) is remembered (the last `ENDS`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiokafka import ConsumerRecord

from podium.events import (
    CloudEvent,
    Mode,
    TaskCommand,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
    encode,
    topics,
)
from podium.runtime.cache import BoundedCache
from podium.runtime.changelog import read_partitions, restore
from podium.runtime.component import Component
from podium.runtime.loop import BaseProcessor, Loop, Spec
from podium.runtime.outbox import Refused
from podium.runtime.settings import Settings
from podium.services.execute import failure, outcome_event, started
from podium.services.participant import Participant, _command
from podium.services.service import TaskService
from podium.triggers.records import event_of
from podium.workflow import join as rules
from podium.workflow.catalog import Catalog, UnknownWorkflow
from podium.workflow.definition import Definition
from podium.workflow.expressions import Activation, ExpressionError
from podium.workflow.failures import attempt_timed_out
from podium.workflow.join import Join, Run
from podium.workflow.states import TaskStatus as S
from podium.workflow.triggers import WAIT_TYPE, WaitFor

log = logging.getLogger("podium.triggers")

#: records kept per waited-for topic for waits that start later (and read back per
#: partition on a restart)
KEEP = 10_000
#: workflow ends remembered, so that a wait's command read after its workflow's end
#: (another topic: no order between them) does not start a wait nobody ends
ENDS = 10_000
SOURCE = "podium/triggers/waits"
#: the service name the gateway's choreography participant runs under
SERVICE = "podium.gateway"

Outcome = TaskSucceeded | TaskFailed


def waited_topics(catalog: Catalog) -> list[str]:
    return sorted(
        {task.wait_for.topic for d in catalog for task in d.tasks if task.wait_for is not None}
    )


class Owner(Protocol):
    def resolve(self, waiting: Waiting, outcome: Outcome, now: float) -> None:
        """Publish the attempt's outcome: a record matched (or its output failed)."""


def succeeded(command: TaskCommand, output: Any) -> TaskSucceeded:
    return TaskSucceeded(
        workflow=command.workflow,
        version=command.version,
        command_id=command.command_id,
        task_id=command.task_id,
        task_type=command.task_type,
        attempt=command.attempt,
        compensation=command.compensation,
        mode=command.mode,
        output=output,
    )


@dataclass(eq=False, slots=True)
class Waiting:
    """One attempt of a wait task, waiting for its record."""

    workflow_id: str
    partition: int
    command: TaskCommand
    spec: WaitFor
    #: epoch seconds; None: no timeout
    deadline: float | None
    owner: Owner

    @property
    def key(self) -> str:
        return key_of(self.workflow_id, self.command.task_id)

    def outcome(self, event: dict[str, Any]) -> Outcome | None:
        """The outcome this record gives the attempt; None when it does not match."""
        match, output = self.spec.compiled()
        workflow = {"id": self.workflow_id, "input": self.command.input}
        activation = Activation({"event": event, "workflow": workflow})
        try:
            if match.evaluate(activation) is not True:
                return None
        except ExpressionError:
            return None  # a record without the fields the match reads is another's
        try:
            return succeeded(self.command, output.render(activation))
        except ExpressionError as error:
            message = f"wait_for.output: {error}"
            return failure(self.command, "ExpressionError", message, retryable=False)


def key_of(workflow_id: str, task_id: str) -> str:
    return f"{workflow_id}/{task_id}"


class Watch:
    """The attempts waiting per topic, and the last `keep` records of each topic."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._kept: dict[str, OrderedDict[tuple[int, int], dict[str, Any]]] = {}
        self._waiting: dict[str, dict[str, Waiting]] = {}

    def start(self, waiting: Waiting, now: float) -> None:
        """Wait for a record; one kept already releases the attempt at once."""
        for event in list(self._kept.get(waiting.spec.topic, {}).values()):
            outcome = waiting.outcome(event)
            if outcome is not None:
                waiting.owner.resolve(waiting, outcome, now)
                return
        self._waiting.setdefault(waiting.spec.topic, {})[waiting.key] = waiting

    def stop(self, waiting: Waiting) -> None:
        found = self._waiting.get(waiting.spec.topic, {})
        if found.get(waiting.key) is waiting:
            del found[waiting.key]

    def seen(
        self, topic: str, partition: int, offset: int, event: dict[str, Any], now: float
    ) -> None:
        """A record of a waited-for topic: kept, and offered to the attempts waiting."""
        kept = self._kept.setdefault(topic, OrderedDict())
        if (partition, offset) in kept:
            return  # read back on a restart and read again live
        kept[(partition, offset)] = event
        while len(kept) > self.keep:
            kept.popitem(last=False)
        waiting = self._waiting.get(topic, {})
        for key, candidate in list(waiting.items()):
            outcome = candidate.outcome(event)
            if outcome is not None:
                del waiting[key]
                candidate.owner.resolve(candidate, outcome, now)

    def kept(self, topic: str) -> int:
        return len(self._kept.get(topic, ()))


class Watcher(BaseProcessor):
    """Reads the waited-for topics (not Podium's events) into the `Watch`.

    Every gateway process reads every partition of them, in a group of its own
    (`podium.gateway.waits.<process>`): the attempts a gateway holds are those of the
    workflow partitions it owns, and the record releasing one may be on any partition
    of its topic. Its offsets matter little: it starts at the end and reads the kept
    records back from the topic.
    """

    name = "triggers.waits"
    group = "podium.gateway.waits"

    def __init__(
        self,
        watch: Watch,
        waited: list[str],
        bootstrap_servers: str,
        settings: Settings,
        *,
        only: str | None = None,
    ) -> None:
        self.watch = watch
        self.topics = waited
        self.bootstrap_servers = bootstrap_servers
        self.settings = settings
        self.only = only
        spec = Spec(
            name=self.name,
            group=f"{self.group}.{uuid.uuid4().hex[:12]}",
            inputs=waited,
            topics=[*waited, topics.DEAD_LETTER],
            changelog=topics.GATEWAY_CHANGELOG,
            foreign=frozenset(waited),
            take=self.take,
            from_end=True,
            only=only,
        )
        self.loop = Loop(spec, self, bootstrap_servers, settings)
        self.ready = self.loop.ready

    def stop(self) -> None:
        self.loop.stop()

    async def run(self) -> None:
        await self.loop.run()

    def take(self, record: ConsumerRecord[bytes, bytes], now: float) -> None:
        event = event_of(record)
        self.watch.seen(record.topic, record.partition, record.offset, event, now)

    async def restore(self, partitions: set[int]) -> None:
        if self.only is not None:
            return  # a one-shot run reads from the end, and only its own workflow waits
        for topic in self.topics:
            there = self.loop.consumer.partitions_for_topic(topic) or set()
            async for record in read_partitions(
                self.bootstrap_servers,
                topic,
                partitions & there,
                self.settings.consumer,
                last=self.watch.keep,
            ):
                self.take(record, time.time())


class WaitWorker(BaseProcessor):
    """Orchestration: takes the conductor's wait commands and answers them when released.

    It reads `podium.workflows` too (co-partitioned with the commands): a workflow's
    end drops its waits, so a workflow that failed, timed out or was cancelled while a
    wait task ran leaves no wait behind (one without a timeout would wait forever).
    """

    name = "triggers.wait-commands"
    group = "podium.gateway.wait-commands"

    def __init__(
        self,
        catalog: Catalog,
        watch: Watch,
        bootstrap_servers: str,
        settings: Settings,
        *,
        only: str | None = None,
    ) -> None:
        self.catalog = catalog
        self.watch = watch
        self.bootstrap_servers = bootstrap_servers
        self.settings = settings
        self.only = only
        self.waits: dict[str, Waiting] = {}
        #: workflow id -> the keys of its waits
        self._of: dict[str, set[str]] = {}
        self._ended: BoundedCache[str, bool] = BoundedCache(ENDS)
        spec = Spec(
            name=self.name,
            group=self.group,
            inputs=[topics.commands(WAIT_TYPE), topics.WORKFLOWS],
            topics=[*topics.task_topics([WAIT_TYPE]), topics.WAITS_CHANGELOG, topics.DEAD_LETTER],
            changelog=topics.WAITS_CHANGELOG,
            rejected=(UnknownWorkflow,),
            only=only,
        )
        self.loop = Loop(spec, self, bootstrap_servers, settings)
        self.ready = self.loop.ready
        self._outbox = self.loop.outbox

    def stop(self) -> None:
        self.loop.stop()

    async def run(self) -> None:
        await self.loop.run()

    def route(self, partition: int, event: CloudEvent, now: float) -> None:
        command = event.data
        if self.only is not None and event.workflowid != self.only:
            return
        if isinstance(command, WorkflowCompleted | WorkflowFailed):
            self._ended.put(event.workflowid, True)
            for key in list(self._of.get(event.workflowid, ())):
                log.info("wait %s dropped: its workflow ended %s", key, command.state)
                self._drop(self.waits[key])
            return
        if isinstance(command, WorkflowStarted):
            return
        if not isinstance(command, TaskCommand):
            raise Refused(f"a {event.type} event does not belong on a command topic")
        if self._ended.get(event.workflowid):
            return  # its workflow has ended: nothing would end this wait
        spec = _wait_of(self.catalog.get(command.workflow, command.version), command.task_id)
        current = self.waits.get(key_of(event.workflowid, command.task_id))
        if current is not None and current.command.attempt >= command.attempt:
            return  # sent again (a conductor's restore): already waiting
        if current is not None:
            self._drop(current)
        timeout = command.timeout
        deadline = None if timeout is None else event.time.timestamp() + timeout
        if deadline is not None and deadline <= now:
            return  # timed out already: the conductor has failed it
        waiting = Waiting(event.workflowid, partition, command, spec, deadline, self)
        self._emit(waiting, started(command))
        self._hold(waiting, now)

    def _hold(self, waiting: Waiting, now: float) -> None:
        self.waits[waiting.key] = waiting
        self._of.setdefault(waiting.workflow_id, set()).add(waiting.key)
        self._outbox.changed(waiting.key, waiting.partition)
        self.watch.start(waiting, now)

    def _forget(self, waiting: Waiting) -> None:
        del self.waits[waiting.key]
        keys = self._of.get(waiting.workflow_id, set())
        keys.discard(waiting.key)
        if not keys:
            self._of.pop(waiting.workflow_id, None)
        self.watch.stop(waiting)

    def _drop(self, waiting: Waiting) -> None:
        self._forget(waiting)
        self._outbox.delete(waiting.key, waiting.partition)

    def resolve(self, waiting: Waiting, outcome: Outcome, now: float) -> None:
        if self.waits.get(waiting.key) is not waiting:
            return  # replaced by a later attempt, or forgotten
        self._drop(waiting)
        self._emit(waiting, outcome)
        log.info("wait %s released (attempt %d)", waiting.key, waiting.command.attempt)

    def _emit(self, waiting: Waiting, payload: TaskStarted | Outcome) -> None:
        event = outcome_event(payload, waiting.workflow_id, SOURCE)
        self._outbox.emit(topics.outcomes(WAIT_TYPE), waiting.partition, encode(event))

    # -- timers: the conductor fails a wait at its deadline; the gateway forgets it --------

    def next_due(self) -> float | None:
        deadlines = [w.deadline for w in self.waits.values() if w.deadline is not None]
        return min(deadlines, default=None)

    def fire(self, now: float) -> None:
        for waiting in list(self.waits.values()):
            if waiting.deadline is not None and waiting.deadline <= now:
                self._drop(waiting)

    # -- state ----------------------------------------------------------------------

    def snapshot(self, key: str) -> bytes | None:
        waiting = self.waits.get(key)
        if waiting is None:
            return None
        return orjson.dumps(
            {
                "wait": {
                    "workflow_id": waiting.workflow_id,
                    "command": waiting.command.model_dump(mode="json"),
                    "deadline": waiting.deadline,
                }
            }
        )

    async def restore(self, partitions: set[int]) -> None:
        if self.only is not None:
            return
        restored = await restore(
            self.bootstrap_servers,
            topics.WAITS_CHANGELOG,
            partitions,
            orjson.loads,
            self.settings.consumer,
        )
        now = time.time()
        for key, (partition, value) in restored.items():
            if not isinstance(value, dict) or "wait" not in value:
                log.error("not a wait's state in %s: %s", topics.WAITS_CHANGELOG, key)
                continue
            state = value["wait"]
            command = TaskCommand.model_validate(state["command"])
            try:
                spec = _wait_of(
                    self.catalog.get(command.workflow, command.version), command.task_id
                )
            except (UnknownWorkflow, Refused):
                continue
            deadline = state.get("deadline")
            if deadline is not None and deadline <= now:
                self._outbox.delete(key, partition)
                continue
            self._hold(Waiting(state["workflow_id"], partition, command, spec, deadline, self), now)
        await self.loop.seal_and_drain()

    def revoke(self, partitions: set[int]) -> None:
        for waiting in list(self.waits.values()):
            if waiting.partition in partitions:
                self._forget(waiting)


def _wait_of(definition: Definition, task_id: str) -> WaitFor:
    try:
        spec = definition.task(task_id).wait_for
    except KeyError:
        spec = None
    if spec is None:
        raise Refused(f"task {task_id!r} of {definition.name} is not a wait task")
    return spec


async def _never(input: Any, ctx: Any) -> None:  # the gateway's participant runs no handler
    raise RuntimeError("a wait task is released by a record, not run")


class WaitParticipant(Participant):
    """Choreography: the participant of the wait tasks; an attempt ends when released,
    or failed at its deadline (a Timeout, retried by the task's policy).

    It reads `podium.workflows` too: the tracker's announcement of a workflow's end
    (failed elsewhere, timed out, cancelled) ends its waits there and then, failed and
    not published (the workflow is over), so their joins settle and leave.
    """

    also_reads = (topics.WORKFLOWS,)

    def __init__(
        self,
        catalog: Catalog,
        watch: Watch,
        bootstrap_servers: str,
        settings: Settings,
        *,
        only: str | None = None,
    ) -> None:
        service = TaskService(SERVICE)
        service.add(WAIT_TYPE, _never)
        super().__init__(service, catalog, bootstrap_servers, settings, only=only)
        self.watch = watch
        self.source = SOURCE
        self._waits: dict[str, tuple[Waiting, Run]] = {}
        #: workflow id -> the keys of its waits (every end is looked up here)
        self._of: dict[str, set[str]] = {}
        self._workflow_ends: BoundedCache[str, bool] = BoundedCache(ENDS)

    def route(self, partition: int, event: CloudEvent, now: float) -> None:
        data = event.data
        if not isinstance(data, WorkflowCompleted | WorkflowFailed | WorkflowStarted):
            super().route(partition, event, now)
            return
        if data.mode != Mode.CHOREOGRAPHY or isinstance(data, WorkflowStarted):
            return
        if self.only is not None and event.workflowid != self.only:
            return
        self._workflow_ends.put(event.workflowid, True)
        for key in list(self._of.get(event.workflowid, ())):
            waiting = self._waits[key][0]
            log.info("wait %s dropped: its workflow ended %s", key, data.state)
            self.resolve(waiting, _ended(waiting.command, data.state), now, publish=False)

    async def _run(self, partition: int, definition: Definition, join: Join, run: Run) -> None:
        now = time.time()
        command = _command(definition, join, run)
        waiting = Waiting(
            join.workflow_id,
            partition,
            command,
            _wait_of(definition, run.task_id),
            None if command.timeout is None else now + command.timeout,
            self,
        )
        recorded = self._ledger.verdict(command.command_id).outcome
        if recorded is not None:  # published before a restart: taken, not waited for again
            self._settle(waiting, run, recorded, now, publish=False)
            return
        if self._workflow_ends.get(join.workflow_id):  # its end came first (another topic)
            self._settle(waiting, run, _ended(command, "ended"), now, publish=False)
            return
        self._waits[waiting.key] = (waiting, run)
        self._of.setdefault(waiting.workflow_id, set()).add(waiting.key)
        marker = self._outcome_event(join, started(command, with_input=True))
        self._outbox.emit(topics.outcomes(WAIT_TYPE), partition, encode(marker))
        self.watch.start(waiting, now)

    def resolve(
        self, waiting: Waiting, outcome: Outcome, now: float, *, publish: bool = True
    ) -> None:
        found = self._waits.get(waiting.key)
        if found is None or found[0] is not waiting:
            return
        self._forget(waiting)
        self._settle(waiting, found[1], outcome, now, publish=publish)

    def _forget(self, waiting: Waiting) -> None:
        del self._waits[waiting.key]
        keys = self._of.get(waiting.workflow_id, set())
        keys.discard(waiting.key)
        if not keys:
            self._of.pop(waiting.workflow_id, None)
        self.watch.stop(waiting)

    def _settle(
        self, waiting: Waiting, run: Run, outcome: Outcome, now: float, *, publish: bool
    ) -> None:
        joined = self._joins.get(waiting.workflow_id)
        if joined is None:
            return
        partition, _, join = joined
        if publish:
            self._ledger.finished(outcome)
            event = self._outcome_event(join, outcome)
            self._outbox.emit(topics.outcomes(WAIT_TYPE), partition, encode(event))
        definition = self.catalog.get(join.name, join.version)
        if isinstance(outcome, TaskSucceeded):
            status, output, retryable = S.SUCCEEDED, outcome.output, True
        else:
            status, output, retryable = S.FAILED, None, outcome.error.retryable
        actions = rules.on_result(
            definition, join, run, status, output, retryable=retryable, now=now
        )
        self._apply(partition, join, actions, now)

    def next_due(self) -> float | None:
        deadlines = [w.deadline for w, _ in self._waits.values() if w.deadline is not None]
        due = super().next_due()
        return min([*deadlines, *([due] if due is not None else [])], default=None)

    def fire(self, now: float) -> None:
        for waiting, _ in list(self._waits.values()):
            if waiting.deadline is not None and waiting.deadline <= now:
                error = attempt_timed_out(waiting.command.attempt, waiting.command.timeout)
                timed_out = failure(
                    waiting.command, error["type"], error["message"], error["retryable"]
                )
                self.resolve(waiting, timed_out, now)
        super().fire(now)

    def revoke(self, partitions: set[int]) -> None:
        for waiting, _ in list(self._waits.values()):
            if waiting.partition in partitions:
                self._forget(waiting)
        super().revoke(partitions)


def _ended(command: TaskCommand, state: str) -> TaskFailed:
    """A wait's end when its workflow has ended: not published, it settles the join."""
    return failure(command, "WorkflowEnded", f"the workflow ended {state}", retryable=False)


def wait_parts(
    catalog: Catalog,
    bootstrap_servers: str,
    settings: Settings,
    *,
    modes: Iterable[Mode] = tuple(Mode),
    only: str | None = None,
) -> list[Component]:
    """What completes the catalog's wait tasks in those modes (nothing when none waits)."""
    waited = waited_topics(catalog)
    if not waited:
        return []
    watch = Watch()
    parts: list[Component] = [Watcher(watch, waited, bootstrap_servers, settings, only=only)]
    modes = set(modes)
    if Mode.ORCHESTRATION in modes:
        parts.append(WaitWorker(catalog, watch, bootstrap_servers, settings, only=only))
    if Mode.CHOREOGRAPHY in modes:
        parts.append(WaitParticipant(catalog, watch, bootstrap_servers, settings, only=only))
    return parts
