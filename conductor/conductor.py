"""The conductor and the tracker: processors around the pure state machine.

Both run `decide(definition, state, event, now)` over the triggers and the
outcome topics, on the runtime's loop (`podium.runtime.loop`: decode or
dead-letter, route, fire due timers, send and seal, commit once acknowledged).
The conductor (orchestration) sends the machine's commands and fires every
timer. The tracker only observes, both modes alike: it sends nothing to the
services, fires only workflow timeouts, holds outcomes that overtook their
upstream, and announces the start and end of choreographed workflows.

State lives in memory per owned partition and in the compacted, co-partitioned
changelog; on assignment the conductor restores its partitions from there and
re-issues the commands of tasks still Running (their command ids are
deterministic, so services answer redeliveries from their recorded outcomes).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from podium import metrics, tracing
from podium.conductor import snapshot
from podium.conductor.completion import complete, published_to
from podium.conductor.snapshot import Ended, Outcome, Snapshot
from podium.conductor.wire import (
    cancel_accepted,
    command_event,
    core_outcome,
    end_event,
    finished_event,
    refusal_of,
    result_of,
    started_event,
)
from podium.events import (
    CloudEvent,
    DecodeError,
    Mode,
    RawRecord,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowCancelAccepted,
    WorkflowCancelRequested,
    WorkflowTriggered,
    encode,
    topics,
)
from podium.runtime.cache import BoundedCache
from podium.runtime.changelog import restore
from podium.runtime.loop import BaseProcessor, Loop, Spec
from podium.runtime.outbox import Refused
from podium.runtime.owned import Owned
from podium.runtime.settings import Settings
from podium.runtime.timers import Timers
from podium.workflow import machine
from podium.workflow.catalog import Catalog, UnknownWorkflow
from podium.workflow.failures import INPUT_ERROR, INVALID_TRIGGER, UNKNOWN_WORKFLOW
from podium.workflow.ids import seed_of
from podium.workflow.machine import WorkflowState
from podium.workflow.states import TERMINAL

log = logging.getLogger("podium.conductor")


#: how long after its end a finished workflow's completion is re-announced on restore
REANNOUNCE_WINDOW_S = 60.0
#: the timer ids that evict a finished workflow's state, and then forget its id
EVICT = "podium:evict"
FORGET = "podium:forget"
#: finished workflows whose full state stays in memory at most, whatever `retention_s`
#: says (the oldest are evicted early: after a burst, thousands end within a minute)
RETAINED_STATES = 1_000
#: owned workflow states kept decoded at most; the least recently used others wait as
#: their JSON (a tenth of the memory), decoded again when an event reaches them
HOT_STATES = 2_000
#: outcomes a tracker holds per workflow while their predecessors are missing
HELD_PER_WORKFLOW = 64
#: workflows a tracker holds outcomes for at most (the oldest are dropped first)
HELD_WORKFLOWS = 10_000


@dataclass(frozen=True, slots=True)
class EndedRecord:
    """What is kept of a workflow once its state is evicted: its result, to answer with.

    Kept as its changelog value, the bytes that are written anyway: a tenth of the
    memory of the decoded result, and read back only when a repeated trigger asks.
    """

    partition: int
    mode: Mode
    value: bytes

    @classmethod
    def of(cls, partition: int, mode: Mode, result: Ended) -> EndedRecord:
        return cls(partition, mode, snapshot.encode(Snapshot(mode, ended=result)))

    @property
    def result(self) -> Ended:
        ended = snapshot.decode(self.value).ended
        if ended is None:  # `of` wrote it from a result
            raise ValueError("an ended record without its result")
        return ended


class Conductor(BaseProcessor):
    """Orchestration: decides, sends the commands, fires every timer, announces the end."""

    name = "conductor"
    group = "podium.conductor"
    changelog = topics.CONDUCTOR_CHANGELOG
    source = "podium/conductor"

    def __init__(
        self,
        catalog: Catalog,
        bootstrap_servers: str,
        settings: Settings,
        *,
        on_state: Callable[[WorkflowState], None] | None = None,
        only: str | None = None,
    ) -> None:
        self.catalog = catalog
        #: one-shot (`podium run`): this workflow only (see `Spec.only`)
        self.only = only
        #: called with every new state (the live view of `podium run`)
        self.on_state = on_state
        self.bootstrap_servers = bootstrap_servers
        self.settings = settings
        #: workflow id -> (partition, mode, state) for the partitions this process owns
        self._workflows = Owned(HOT_STATES, WorkflowState)
        #: (due, workflow id, timer id) for the owned workflows
        #: (due, workflow id, timer id): the machine's timers, EVICT and FORGET
        self._timers: Timers[str] = Timers()
        self._owned: set[int] = set()
        #: the tracker's outcomes it cannot apply yet, persisted with the workflow
        self._held: dict[str, tuple[int, list[Outcome]]] = {}
        #: the owned workflows that have ended and are still in `_workflows`, oldest first
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._ended: BoundedCache[str, EndedRecord] = BoundedCache(
            settings.ended_ids, self._tombstone
        )
        types = sorted(catalog.task_types)
        spec = Spec(
            name=self.name,
            group=self.group,
            inputs=[topics.TRIGGERS, *(topics.outcomes(t) for t in types)],
            topics=[*topics.of_stateful_consumer(self.changelog, types), *published_to(catalog)],
            changelog=self.changelog,
            # a choreographed workflow's first outcome can share a batch with its
            # trigger, and the tracker must know the workflow before its outcomes
            first=topics.TRIGGERS,
            rejected=(UnknownWorkflow,),
            refuse=self.refuse,
            only=only,
            ignored=frozenset({TaskStarted.event_type}),
        )
        self.loop = Loop(spec, self, bootstrap_servers, settings)
        self.ready = self.loop.ready
        self._outbox = self.loop.outbox

    def stop(self) -> None:
        self.loop.stop()

    async def run(self) -> None:
        await self.loop.run()

    # -- what the conductor and the tracker do differently ---------------------------

    def accepts(self, mode: Mode) -> bool:
        """Whether it runs the machine for a workflow of this mode."""
        return mode == Mode.ORCHESTRATION

    def announces(self, mode: Mode) -> bool:
        """Whether it publishes the start and end of a workflow of this mode."""
        return mode == Mode.ORCHESTRATION

    def arms(self, purpose: str) -> bool:
        """Whether it fires timers of this purpose (the services retry by themselves)."""
        return True

    def observes(self, mode: Mode) -> bool:
        """The machine's `observed` flag: whether services act on their own in this mode."""
        return False

    def command(self, partition: int, state: WorkflowState, command: machine.RunTask) -> None:
        record = encode(command_event(state, command, self.source))
        self._outbox.emit(topics.commands(command.task_type), partition, record)

    def unapplied(self, partition: int, workflow_id: str, outcome: Outcome) -> None:
        """An outcome the machine could not apply: after its own command, a duplicate."""

    def applied(self, partition: int, workflow_id: str, now: float) -> None:
        """The workflow changed."""

    def reissue(self, partition: int, state: WorkflowState) -> None:
        """After a restore: the commands of attempts still running, again (same ids)."""
        for command in machine.in_flight(self.catalog.get(state.name, state.version), state):
            self.command(partition, state, command)

    # -- the processor ----------------------------------------------------------------

    def next_due(self) -> float | None:
        return self._timers.next_due()

    async def before_poll(self) -> None:
        """At `max_running` running workflows, new triggers wait on their topic.

        Outcomes keep flowing, so the running ones finish and make room: memory stays
        bounded under any burst (at most one fetched batch of triggers beyond the cap).
        """
        consumer = self.loop.consumer
        if self.running() >= self.settings.max_running:
            consumer.pause(*(tp for tp in consumer.assignment() if tp.topic == topics.TRIGGERS))
        elif consumer.paused():
            self.loop.reader.resume()

    def running(self) -> int:
        """How many owned workflows have not ended."""
        return len(self._workflows) - len(self._finished)

    def state_of(self, workflow_id: str) -> WorkflowState | None:
        """The current state of a workflow on this process's partitions."""
        owned = self._workflows.get(workflow_id)
        return owned[2] if owned else None

    # -- one record ---------------------------------------------------------------

    def route(self, partition: int, event: CloudEvent, now: float) -> None:
        data = event.data
        workflow_id = event.workflowid
        if self.only is not None and workflow_id != self.only:
            return
        if isinstance(data, WorkflowTriggered):
            if self._known(partition, workflow_id):
                return  # the same trigger again: a workflow id starts once
            if not self.accepts(data.mode):
                return  # a choreographed workflow: the services drive it
            definition = self.catalog.get(data.workflow, data.version)
            problems = definition.input_errors(data.input)
            if problems:
                raise Refused(f"input rejected: {'; '.join(problems)}", INPUT_ERROR)
            start = machine.Started(
                workflow_id=workflow_id,
                input=data.input,
                seed=seed_of(workflow_id),
                observed=self.observes(data.mode),
            )
            self._decide(partition, workflow_id, data.mode, definition, None, start, now)
            if self.announces(data.mode):
                self._announce(partition, started_event(data, workflow_id, event, self.source))
                metrics.workflow_started(data.workflow, data.mode)
            self.applied(partition, workflow_id, now)
        elif isinstance(data, TaskSucceeded | TaskFailed):
            if self._apply_outcome(partition, workflow_id, data, now):
                self.applied(partition, workflow_id, now)
            else:
                self.unapplied(partition, workflow_id, data)
        elif isinstance(data, WorkflowCancelRequested | WorkflowCancelAccepted):
            self._cancel(partition, workflow_id, data, now)
        # other event types (a choreography Skipped report: the machine derives skips
        # itself) are not the state machine's input

    def _cancel(
        self,
        partition: int,
        workflow_id: str,
        data: WorkflowCancelRequested | WorkflowCancelAccepted,
        now: float,
    ) -> None:
        """A cancel: the decider takes a request and says so; the observer follows the decision.

        The decider of a workflow is the one that announces it (the conductor in
        orchestration, the tracker in choreography): it alone sees the cancel at one
        point of the workflow's story, so the participants (and the tracker watching the
        conductor) follow its `WorkflowCancelAccepted`, not the request. A request for a
        workflow that has ended is answered with its end again, as a repeated trigger is.
        """
        owned = self._workflows.get(workflow_id)
        request = isinstance(data, WorkflowCancelRequested)
        if owned is None:
            if request:
                self._known(partition, workflow_id)  # ended and evicted: its end again
            return
        _, mode, state = owned
        decides = self.announces(mode)
        if decides != request:
            return  # a request the other role decides, or our own decision read back
        if state.status in TERMINAL:
            self._known(partition, workflow_id)  # its end again, for whoever awaits the cancel
        else:
            definition = self.catalog.get(state.name, state.version)
            cancel = machine.CancelRequested(reason=data.reason)
            self._decide(partition, workflow_id, mode, definition, state, cancel, now)
            self.applied(partition, workflow_id, now)
        current = self._workflows[workflow_id][2]
        if decides and machine.cancelled(current):
            # again for a repeated request (one event id): the first may have been lost
            # in a crash after the state's snapshot was written
            accepted = cancel_accepted(current, mode, data.reason, self.source)
            self._outbox.emit(topics.TRIGGERS, partition, encode(accepted))

    def refuse(self, partition: int, raw: RawRecord, why: Exception, now: float) -> None:
        """A trigger it dead-lettered is answered: whoever awaits its id reads a Failed end.

        Answered once per workflow id, as a start is, by the party that announces the
        trigger's mode (both the conductor and the tracker answer one without a valid
        mode, with the same event), and remembered like an end, so the id answers the
        same again. Not answered: a trigger keyed other than by its id (`refusal_of`), an
        id this process knows (its end is announced again instead), and, in a live
        deployment, a `podium run`'s trigger, which that run's own parts take.
        """
        if raw.topic != topics.TRIGGERS:
            return
        refusal = refusal_of(raw)
        if refusal is None:
            return
        workflow_id = refusal.workflow_id
        if self.only is not None:
            if workflow_id != self.only:
                return  # another's
        elif refusal.oneshot:
            return  # a `podium run`'s: its own conductor or tracker takes it
        if refusal.mode is not None and not self.announces(refusal.mode):
            return
        if self._known(partition, workflow_id):
            return
        result = refusal.result(*_refusal_error(why))
        log.warning("answering %s: %s", workflow_id, result.error)
        if refusal.mode is not None:
            self._remember(partition, workflow_id, refusal.mode, result, now)
        self._announce(partition, end_event(workflow_id, result, self.source))

    def _known(self, partition: int, workflow_id: str) -> bool:
        """Whether this workflow id has started already; an ended one's result is re-announced.

        A repeated start is answered, not ignored: whoever triggered it again (a retried
        `podium trigger --wait`) is waiting for an end event.
        """
        owned = self._workflows.get(workflow_id)
        if owned is not None:
            _, mode, state = owned
            if state.status in TERMINAL and self.announces(mode):
                self._announce(partition, finished_event(state, self.source, mode))
            return True
        ended = self._ended.get(workflow_id)
        if ended is None:
            return False
        if self.announces(ended.mode):
            self._announce(partition, end_event(workflow_id, ended.result, self.source))
        return True

    def _announce(self, partition: int, event: CloudEvent) -> None:
        self._outbox.emit(topics.WORKFLOWS, partition, encode(event))

    def _apply_outcome(
        self, partition: int, workflow_id: str, data: TaskSucceeded | TaskFailed, now: float
    ) -> bool:
        """Feed an outcome to the machine; False when it changed nothing."""
        owned = self._workflows.get(workflow_id)
        if owned is None:
            return False  # a workflow this process never started (or not yet: see the tracker)
        _, mode, state = owned
        definition = self.catalog.get(state.name, state.version)
        self._decide(partition, workflow_id, mode, definition, state, core_outcome(data), now)
        return self._workflows[workflow_id][2] is not state

    def fire(self, now: float) -> None:
        for workflow_id, timer_id in self._timers.due(now):
            if timer_id == FORGET:
                self._forget(workflow_id)
                continue
            owned = self._workflows.get(workflow_id)
            if owned is None:
                continue
            partition, mode, state = owned
            if timer_id == EVICT:
                self._evict(partition, workflow_id, state)
                continue
            if timer_id not in state.timers:
                continue  # cancelled or already fired
            definition = self.catalog.get(state.name, state.version)
            self._decide(
                partition,
                workflow_id,
                mode,
                definition,
                state,
                machine.TimerFired(timer_id=timer_id),
                now,
            )

    def _evict(self, partition: int, workflow_id: str, state: WorkflowState) -> None:
        """Keep only the result of a workflow that ended `retention_s` ago: memory stays flat."""
        if state.status not in TERMINAL:
            return
        _, mode, _ = self._workflows.pop(workflow_id)
        self._finished.pop(workflow_id, None)
        self._held.pop(workflow_id, None)
        result = result_of(state, mode)
        self._remember(partition, workflow_id, mode, result, state.ended_at or time.time())

    def _finish(self, partition: int, workflow_id: str, ended_at: float) -> None:
        """A workflow in memory has ended: its state leaves after `retention_s`, or earlier
        when more than `RETAINED_STATES` are waiting to."""
        if workflow_id in self._finished:
            return
        self._finished[workflow_id] = None
        self._timers.add(ended_at + self.settings.retention_s, workflow_id, EVICT)
        if len(self._finished) > RETAINED_STATES:
            oldest = next(iter(self._finished))
            old_partition, _, old_state = self._workflows[oldest]
            self._evict(old_partition, oldest, old_state)

    def _remember(
        self, partition: int, workflow_id: str, mode: Mode, result: Ended, ended_at: float
    ) -> None:
        self._ended.put(workflow_id, EndedRecord.of(partition, mode, result))
        self._outbox.changed(workflow_id, partition)
        self._timers.add(ended_at + self.settings.ended_retention_s, workflow_id, FORGET)
        self._timers.prune(self._knows, len(self._workflows) + len(self._ended))

    def _forget(self, workflow_id: str) -> None:
        """The id's retention has passed: a tombstone drops it from the changelog."""
        ended = self._ended.pop(workflow_id)
        if ended is not None:
            self._tombstone(workflow_id, ended)

    def _tombstone(self, workflow_id: str, ended: EndedRecord) -> None:
        """An ended id forgotten, by age or by count (`ended_ids`): the changelog forgets it too."""
        self._outbox.delete(workflow_id, ended.partition)

    def _knows(self, workflow_id: str) -> bool:
        """Whether the id is still here: running, retained, or remembered as ended."""
        return workflow_id in self._workflows or workflow_id in self._ended

    def _decide(
        self,
        partition: int,
        workflow_id: str,
        mode: Mode,
        definition: Any,
        state: WorkflowState | None,
        event: Any,
        now: float,
    ) -> None:
        new_state, commands = machine.decide(definition, state, event, now)
        if new_state is state or new_state is None:
            return
        self._workflows[workflow_id] = (partition, mode, new_state)
        self._outbox.changed(workflow_id, partition)
        if self.on_state is not None:
            self.on_state(new_state)
        for command in commands:
            self._execute(partition, workflow_id, mode, new_state, command)
        if new_state.status in TERMINAL and new_state.ended_at is not None:
            self._finish(partition, workflow_id, new_state.ended_at)

    def _execute(
        self, partition: int, workflow_id: str, mode: Mode, state: WorkflowState, command: Any
    ) -> None:
        if isinstance(command, machine.RunTask):
            self.command(partition, state, command)
        elif isinstance(command, machine.ScheduleTimer):
            if self.arms(command.purpose):
                self._timers.add(command.due, workflow_id, command.timer_id)
        elif isinstance(command, machine.WorkflowFinished) and self.announces(mode):
            self._announce(partition, finished_event(state, self.source, mode))
            _report_end(state, mode)
            self._complete(state, mode)

    def _complete(self, state: WorkflowState, mode: Mode) -> None:
        """The ended workflow's `on_complete` entries (`podium.conductor.completion`)."""
        try:
            complete(self._outbox, self.catalog, state, mode, result_of(state, mode), self.source)
        except UnknownWorkflow as exc:
            log.error("on_complete of %s: %s", state.workflow_id, exc)

    def snapshot(self, workflow_id: str) -> bytes | None:
        """The workflow's changelog value (`podium.conductor.snapshot`); None: nothing known."""
        held = self._held.get(workflow_id)
        outcomes = tuple(held[1]) if held is not None else ()
        owned = self._workflows.get(workflow_id)
        if owned is not None:
            _, mode, state = owned
            return snapshot.encode(Snapshot(mode, state, outcomes))
        ended = self._ended.get(workflow_id)
        if ended is not None:
            return ended.value
        if outcomes:
            return snapshot.encode(Snapshot(held=outcomes))
        return None

    # -- partition ownership ------------------------------------------------------

    async def restore(self, partitions: set[int]) -> None:
        """Rebuild the state of newly assigned partitions from the changelog."""
        new = partitions - self._owned
        if not new or self.only is not None:
            self._owned |= partitions
            return
        started = time.monotonic()
        snapshots = await restore(
            self.bootstrap_servers, self.changelog, new, snapshot.decode, self.settings.consumer
        )
        self._owned |= new
        now = time.time()
        for workflow_id, (partition, value) in snapshots.items():
            if value.held:
                self._held[workflow_id] = (partition, list(value.held))
            if value.ended is not None:
                ended_at = _epoch(value.ended.ended_at) or now
                if now - ended_at < self.settings.ended_retention_s:
                    self._remember(partition, workflow_id, value.mode, value.ended, ended_at)
                else:
                    self._outbox.delete(workflow_id, partition)
                continue
            if value.state is None:
                continue
            self._workflows[workflow_id] = (partition, value.mode, value.state)
            try:
                self._resume(partition, workflow_id, value.mode, value.state, now)
            except UnknownWorkflow as exc:
                log.error("cannot resume %s: %s", workflow_id, exc)
        log.info(
            "%s restored %d workflow(s) of partitions %s in %.0f ms",
            self.name,
            len(snapshots),
            sorted(new),
            (time.monotonic() - started) * 1000,
        )
        await self.loop.seal_and_drain()

    def _resume(
        self, partition: int, workflow_id: str, mode: Mode, state: WorkflowState, now: float
    ) -> None:
        """Re-arm timers and re-issue in-flight commands of a restored workflow."""
        if state.status in TERMINAL:
            ended = state.ended_at if state.ended_at is not None else now
            recent = now - ended < REANNOUNCE_WINDOW_S
            if recent and self.announces(mode):
                self._announce(partition, finished_event(state, self.source, mode))
                self._complete(state, mode)  # at least once: it may not have gone out
            self._finish(partition, workflow_id, ended)
            return
        for timer_id, timer in state.timers.items():
            if self.arms(timer.purpose):
                self._timers.add(timer.due, workflow_id, timer_id)
        self.reissue(partition, state)

    def revoke(self, partitions: set[int]) -> None:
        self._owned -= partitions
        for workflow_id in self._workflows.on(partitions):
            del self._workflows[workflow_id]
            self._finished.pop(workflow_id, None)
        for workflow_id in [w for w, (p, _) in self._held.items() if p in partitions]:
            del self._held[workflow_id]
        for workflow_id in [w for w, e in self._ended.items() if e.partition in partitions]:
            self._ended.pop(workflow_id)
        self._timers.keep(self._knows)


class Tracker(Conductor):
    """Observes both modes: the services act on their own; it announces choreographed ends."""

    name = "tracker"
    group = "podium.tracker"
    changelog = topics.TRACKER_CHANGELOG
    source = "podium/tracker"

    def accepts(self, mode: Mode) -> bool:
        return True

    async def before_poll(self) -> None:
        """No cap on running workflows: in choreography the services start them on their
        own, so a tracker that stopped reading triggers would only hold their outcomes."""

    def announces(self, mode: Mode) -> bool:
        return mode == Mode.CHOREOGRAPHY

    def arms(self, purpose: str) -> bool:
        return purpose == "workflow_timeout"

    def observes(self, mode: Mode) -> bool:
        # an orchestrated workflow's attempts are the conductor's, which starts none while
        # undoing: awaiting a service's own retry or start there would wait forever
        return mode == Mode.CHOREOGRAPHY

    def command(self, partition: int, state: WorkflowState, command: machine.RunTask) -> None:
        pass  # the services (or the conductor) run it

    def reissue(self, partition: int, state: WorkflowState) -> None:
        pass

    # -- outcomes in the wrong order ---------------------------------------------------
    #
    # The conductor only ever sees an outcome after its own command, so what it cannot
    # apply is a duplicate or stale. The tracker reads the outcome topics of many task
    # types, which Kafka does not order among each other: s3's outcome can arrive before
    # s2's (or before the trigger, or a compensation's before the failure that caused
    # it). It holds what it cannot apply yet and tries again after each change. What is
    # held is part of the workflow's snapshot: the offsets that carried it are committed
    # with the batch, so a restarted tracker must find it in the changelog.

    def unapplied(self, partition: int, workflow_id: str, outcome: Outcome) -> None:
        if self._ended.get(workflow_id) is not None:
            return  # a late duplicate of a workflow that has ended and left memory
        _, held = self._held.pop(workflow_id, (partition, []))
        self._held[workflow_id] = (partition, [*held[-HELD_PER_WORKFLOW:], outcome])
        self._outbox.changed(workflow_id, partition)
        if len(self._held) > HELD_WORKFLOWS:  # outcomes of workflows that never started
            oldest = next(iter(self._held))
            dropped, _ = self._held.pop(oldest)
            if oldest not in self._workflows:
                self._outbox.delete(oldest, dropped)

    def applied(self, partition: int, workflow_id: str, now: float) -> None:
        progress = True
        while progress and workflow_id in self._held:
            progress = False
            _, held = self._held.pop(workflow_id)
            for outcome in held:
                if self._apply_outcome(partition, workflow_id, outcome, now):
                    progress = True
                else:
                    self.unapplied(partition, workflow_id, outcome)
        owned = self._workflows.get(workflow_id)
        if owned is not None and owned[2].status in TERMINAL and workflow_id in self._held:
            del self._held[workflow_id]  # what is left are duplicates and stale attempts
            self._outbox.changed(workflow_id, partition)


def _report_end(state: WorkflowState, mode: Mode) -> None:
    """A decided end in the metrics, and the workflow's span (the root of its trace)."""
    metrics.workflow_ended(state.name, mode, state.status)
    tracing.workflow_span(
        state.workflow_id,
        state.name,
        state.version,
        mode,
        state.status,
        state.started_at,
        state.ended_at,
    )


def _refusal_error(why: Exception) -> tuple[str, str]:
    """The error type and message that answer a trigger refused for `why`."""
    if isinstance(why, UnknownWorkflow):
        return UNKNOWN_WORKFLOW, str(why)
    if isinstance(why, Refused):
        return why.error_type, str(why)
    return INVALID_TRIGGER, why.reason if isinstance(why, DecodeError) else str(why)


def _epoch(iso: str | None) -> float | None:
    return None if iso is None else datetime.fromisoformat(iso).timestamp()
