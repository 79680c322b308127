"""The workflow state machine: ``decide(definition, state, event, now) -> (state, commands)``.

Sans-I/O: events in, commands out, immutable state. Time (``now``, epoch
seconds) and the seed for retry jitter are passed in, so replaying the same
events gives the same states and commands. The conductor, the passive tracker
and the tests all run this one function.

Events: ``Started``, ``TaskSucceeded``, ``TaskFailed``, ``TimerFired``,
``CancelRequested``. Commands: ``RunTask`` (``compensation=True`` for a
compensation), ``ScheduleTimer``, ``WorkflowFinished``.

Ids are deterministic: command ``{wf}:{task}:{attempt}`` (compensations
``{wf}:{task}:compensate:{attempt}``), idempotency key ``{wf}:{task}`` (stable
across attempts; ``{wf}:{task}:compensate``), timers ``{wf}:timeout``,
``{wf}:{task}:retry:{attempt}`` and ``{wf}:{task}:timeout:{attempt}``.
Timers are never cancelled by a command: a timer that no longer matters is
dropped from ``state.timers``, and a ``TimerFired`` for an id not in
``state.timers`` is ignored (the shell may forget such timers).

Rules (issue 11):

- fan-out / fan-in: every task whose observed upstream tasks are resolved
  (Succeeded or Skipped) is evaluated at once; ``when`` false or, with
  ``skip_if_upstream_skipped``, a Skipped dependency makes it Skipped.
- an expression error in ``when`` or the input: the task Fails, not
  retryable, error type ``ExpressionError``.
- a retryable failure with attempts left: Retrying plus a backoff timer; its
  firing starts the next attempt. Otherwise the task Fails.
- an attempt timeout fails that attempt (retryable, error type ``Timeout``).
- outcomes of an attempt other than the current one, duplicates, and outcomes
  arriving after the workflow left Running are ignored (compensation outcomes
  are accepted while Compensating).
- a Failed task: ``on_failure: fail`` -> workflow Failed; ``compensate`` ->
  Compensating, compensations of Succeeded tasks run one at a time in reverse
  completion order (each with its own retry policy), then Compensated — or
  Failed if a compensation fails for good. Attempts still running are awaited
  first (until they end or time out, with no retry): a late success is undone
  too. With nothing to compensate the workflow goes straight through
  Compensating to Compensated.
- the workflow timeout (while Running or Compensating) -> TimedOut; cancel ->
  Cancelled (no compensation). Task states are left as they were.
- ``WorkflowFinished`` is emitted exactly once, on entering a terminal state;
  any later event returns the state unchanged and no commands.

Observe-only use (the tracker): in choreography, services retry by
themselves and publish each attempt's outcome; the tracker does not fire
retry timers. So an outcome for attempt N+1 arriving while the task is
Retrying after attempt N is taken as "attempt N+1 started" (a Retrying ->
Running entry with no command), then applied. The conductor never sees this
case: it only starts attempt N+1 itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from heapq import heappop, heappush
from typing import Any, TypeVar, overload

from pydantic import BaseModel

from podium.workflow import ids
from podium.workflow.choreography import (
    Abort,
    Fail,
    Ready,
    Skip,
    compensation_order,
    render_compensation_input,
    render_input,
    render_output,
    task_readiness,
)
from podium.workflow.definition import Compensation, Definition, TaskSpec
from podium.workflow.expressions import ExpressionError, Outcome
from podium.workflow.ids import jitter_salt
from podium.workflow.messages import (
    CancelRequested,
    Command,
    Event,
    RunTask,
    ScheduleTimer,
    Started,
    TaskFailed,
    TaskSucceeded,
    TimerFired,
    WorkflowFinished,
    command_adapter,
    event_adapter,
)
from podium.workflow.state import HistoryEntry, TaskState, Timer, WorkflowState
from podium.workflow.states import RESOLVED, TERMINAL, TaskStatus, WorkflowStatus

__all__ = [
    "TERMINAL",
    "CancelRequested",
    "Command",
    "Event",
    "HistoryEntry",
    "RunTask",
    "ScheduleTimer",
    "Started",
    "TaskFailed",
    "TaskState",
    "TaskStatus",
    "TaskSucceeded",
    "Timer",
    "TimerFired",
    "WorkflowFinished",
    "WorkflowState",
    "WorkflowStatus",
    "command_adapter",
    "decide",
    "event_adapter",
    "in_flight",
    "run_task",
]


# -- decide ------------------------------------------------------------------


@overload
def decide(
    definition: Definition, state: WorkflowState, event: Event, now: float
) -> tuple[WorkflowState, list[Command]]: ...
@overload
def decide(
    definition: Definition, state: None, event: Event, now: float
) -> tuple[WorkflowState | None, list[Command]]: ...
def decide(
    definition: Definition, state: WorkflowState | None, event: Event, now: float
) -> tuple[WorkflowState | None, list[Command]]:
    """Apply one event; return the new state and the commands to carry out."""
    if isinstance(event, Started):
        if state is not None:
            return state, []
        return _start(definition, event, now)
    if state is None or state.status in TERMINAL:
        return state, []
    step = _Step(definition, state, now)
    if _HANDLERS[type(event)](step, event):
        return step.result()
    return state, []


_Tasks = dict[str, TaskState]


class _Upstream(Mapping[str, Outcome]):
    """The tasks of a state seen as ``{task id: (state, output)}`` for the join rule."""

    __slots__ = ("_tasks",)

    def __init__(self, tasks: _Tasks) -> None:
        self._tasks = tasks

    def __getitem__(self, key: str) -> Outcome:
        task = self._tasks[key]
        return (task.status, task.output)

    def get(self, key: str, default: Any = None) -> Any:
        task = self._tasks.get(key)
        return default if task is None else (task.status, task.output)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)


_M = TypeVar("_M", bound=BaseModel)


def _constructor(cls: type[_M]) -> Callable[..., _M]:
    """A faster ``model_construct`` for the hot path: every field is passed, nothing is validated.

    (``model_construct`` spends most of its time on defaults and aliases,
    which these call sites never need.)
    """
    fields = frozenset(cls.model_fields)
    new = cls.__new__
    setattr_ = object.__setattr__

    def construct(**values: Any) -> _M:
        assert values.keys() == fields, sorted(fields ^ values.keys())
        model = new(cls)
        setattr_(model, "__dict__", values)
        setattr_(model, "__pydantic_fields_set__", set(fields))
        setattr_(model, "__pydantic_extra__", None)
        setattr_(model, "__pydantic_private__", None)
        return model

    return construct


_new_task = _constructor(TaskState)
_entry = _constructor(HistoryEntry)
_timer = _constructor(Timer)
_run_task = _constructor(RunTask)
_schedule_timer = _constructor(ScheduleTimer)
_finished = _constructor(WorkflowFinished)
_state = _constructor(WorkflowState)


class _Step:
    """Mutable scratch space for one decision; ``result()`` freezes it into a new state."""

    def __init__(self, definition: Definition, state: WorkflowState, now: float) -> None:
        self.definition = definition
        self.plan = definition.plan
        self.state = state
        self.now = now
        self.wf = state.workflow_id
        self.status = state.status
        self.tasks: _Tasks = dict(state.tasks)
        self.timers = dict(state.timers)
        self.completed = state.completed
        self.compensations = state.compensations
        self.queue = state.compensation_queue
        self.history: list[HistoryEntry] = []
        self.commands: list[Command] = []
        self.output: Any = state.output
        self.error = state.error
        self.ended_at = state.ended_at

    def result(self) -> tuple[WorkflowState, list[Command]]:
        state = _state(
            **{
                **self.state.__dict__,
                "status": self.status,
                "tasks": self.tasks,
                "timers": self.timers,
                "completed": self.completed,
                "compensations": self.compensations,
                "compensation_queue": self.queue,
                "history": self.state.history + tuple(self.history),
                "output": self.output,
                "error": self.error,
                "ended_at": self.ended_at,
            }
        )
        return state, self.commands

    # -- recording

    def record(
        self,
        task_id: str | None,
        before: str | None,
        after: str,
        attempt: int | None = None,
        *,
        input: Any = None,
        output: Any = None,
        error: dict[str, Any] | None = None,
        compensation: bool = False,
        reason: str | None = None,
    ) -> None:
        self.history.append(
            _entry(
                time=self.now,
                task_id=task_id,
                from_state=before,
                to_state=after,
                attempt=attempt,
                input=input,
                output=output,
                error=error,
                compensation=compensation,
                reason=reason,
            )
        )

    def set_task(
        self, task_id: str, task: TaskState, *, input: Any = None, reason: str | None = None
    ) -> None:
        before = self.tasks[task_id]
        self.tasks[task_id] = task
        self.record(
            task_id,
            before.status.value,
            task.status.value,
            task.attempts or None,
            input=input,
            output=task.output if task.status is TaskStatus.SUCCEEDED else None,
            error=task.error if task.status in (TaskStatus.FAILED, TaskStatus.RETRYING) else None,
            reason=reason,
        )

    def set_compensation(self, task_id: str, task: TaskState, *, input: Any = None) -> None:
        before = self.compensations.get(task_id)
        self.compensations = {**self.compensations, task_id: task}
        self.record(
            task_id,
            before.status.value if before else TaskStatus.PENDING.value,
            task.status.value,
            task.attempts,
            input=input,
            output=task.output if task.status is TaskStatus.SUCCEEDED else None,
            error=task.error if task.status in (TaskStatus.FAILED, TaskStatus.RETRYING) else None,
            compensation=True,
        )

    def schedule(self, timer_id: str, timer: Timer) -> None:
        self.timers[timer_id] = timer
        self.commands.append(
            _schedule_timer(
                kind="schedule_timer",
                timer_id=timer_id,
                workflow_id=self.wf,
                due=timer.due,
                purpose=timer.purpose,
                task_id=timer.task_id,
                attempt=timer.attempt,
                compensation=timer.compensation,
            )
        )

    # -- one attempt of a task or of its compensation: the same life, two lanes

    def _lane(self, tid: str, compensation: bool) -> TaskState:
        return self.compensations[tid] if compensation else self.tasks[tid]

    def _put(self, tid: str, compensation: bool, task: TaskState) -> None:
        if compensation:
            self.set_compensation(tid, task)
        else:
            self.set_task(tid, task)

    def _step_spec(self, tid: str, compensation: bool) -> TaskSpec | Compensation:
        spec = self.plan.tasks[tid].spec
        if compensation:
            assert spec.compensate is not None
            return spec.compensate
        return spec

    def arm_timeout(self, tid: str, attempt: int, compensation: bool) -> None:
        """After a command: the attempt's timeout timer, if the step has a timeout."""
        timeout = self._step_spec(tid, compensation).timeout
        if timeout is not None:
            self.schedule(
                ids.attempt_timer(self.wf, tid, attempt, compensation),
                _timer(
                    due=self.now + timeout,
                    purpose="attempt_timeout",
                    task_id=tid,
                    attempt=attempt,
                    compensation=compensation,
                ),
            )

    def attempt_ended(self, tid: str, attempt: int, compensation: bool, output: Any) -> None:
        """The attempt succeeded: disarm its timeout, record the output."""
        self.timers.pop(ids.attempt_timer(self.wf, tid, attempt, compensation), None)
        before = self._lane(tid, compensation)
        self._put(
            tid,
            compensation,
            _new_task(
                status=TaskStatus.SUCCEEDED,
                attempts=attempt,
                output=output,
                error=None,
                started_at=before.started_at,
                ended_at=self.now,
            ),
        )

    def attempt_failed(
        self,
        tid: str,
        attempt: int,
        compensation: bool,
        error: dict[str, Any],
        *,
        final: bool = False,
    ) -> bool:
        """Retrying with a backoff timer (True), or Failed for good (False)."""
        self.timers.pop(ids.attempt_timer(self.wf, tid, attempt, compensation), None)
        policy = self._step_spec(tid, compensation).retry
        before = self._lane(tid, compensation)
        retry = bool(error["retryable"]) and attempt < policy.max_attempts and not final
        self._put(
            tid,
            compensation,
            _new_task(
                status=TaskStatus.RETRYING if retry else TaskStatus.FAILED,
                attempts=attempt,
                output=None,
                error=error,
                started_at=before.started_at,
                ended_at=None if retry else self.now,
            ),
        )
        if retry:
            self.schedule(
                ids.retry_timer(self.wf, tid, attempt + 1, compensation),
                _timer(
                    due=self.now
                    + policy.delay(attempt, jitter_salt(self.state.seed, tid, compensation)),
                    purpose="retry",
                    task_id=tid,
                    attempt=attempt + 1,
                    compensation=compensation,
                ),
            )
        return retry

    # -- forward tasks

    def advance(self, candidates: Iterator[str] | tuple[str, ...]) -> None:
        """Evaluate the candidate tasks (and, through skips, their dependents) in topological order."""
        tasks = self.plan.tasks
        heap: list[tuple[int, str]] = []
        for tid in candidates:
            heappush(heap, (tasks[tid].index, tid))
        upstream = _Upstream(self.tasks)
        resolved = False
        while heap and self.status is WorkflowStatus.RUNNING:
            _, tid = heappop(heap)
            if self.tasks[tid].status is not TaskStatus.PENDING or not self.resolved(
                tasks[tid].observes
            ):
                continue
            verdict = task_readiness(tasks[tid], upstream, self.state.input, self.wf)
            if isinstance(verdict, Ready):
                self.start_attempt(tid, 1, verdict.input)
            elif isinstance(verdict, Skip):
                self.set_task(
                    tid,
                    _new_task(
                        status=TaskStatus.SKIPPED,
                        attempts=0,
                        output=None,
                        error=None,
                        started_at=None,
                        ended_at=self.now,
                    ),
                    reason=verdict.reason,
                )
                resolved = True
                for child in tasks[tid].dependents:
                    heappush(heap, (tasks[child].index, child))
            elif isinstance(verdict, Fail):
                error = {"type": verdict.error_type, "message": verdict.message, "retryable": False}
                self.set_task(
                    tid,
                    _new_task(
                        status=TaskStatus.FAILED,
                        attempts=0,
                        output=None,
                        error=error,
                        started_at=None,
                        ended_at=self.now,
                    ),
                )
                self.workflow_failed(tid, error)
            elif isinstance(
                verdict, Abort
            ):  # pragma: no cover - a Failed task already ended Running
                continue
        if resolved:
            self.maybe_succeed()

    def resolved(self, task_ids: tuple[str, ...]) -> bool:
        """Cheap pre-check before the join rule: are all these tasks Succeeded or Skipped?"""
        tasks = self.tasks
        return all(tasks[tid].status in RESOLVED for tid in task_ids)

    def start_attempt(self, tid: str, attempt: int, input: Any, *, command: bool = True) -> None:
        before = self.tasks[tid]
        task = _new_task(
            status=TaskStatus.RUNNING,
            attempts=attempt,
            output=None,
            error=None,
            started_at=before.started_at if before.started_at is not None else self.now,
            ended_at=None,
        )
        self.set_task(tid, task, input=input, reason=None if command else "observed")
        if not command:
            return
        self.commands.append(
            run_task(self.definition, self.wf, tid, attempt, input, compensation=False)
        )
        self.arm_timeout(tid, attempt, compensation=False)

    def startable(self, tid: str) -> bool:
        """Observed, while undoing: a Pending task the services may still start (or decline)."""
        if not self.state.observed or self.status is not WorkflowStatus.COMPENSATING:
            return False
        if self.tasks[tid].status is not TaskStatus.PENDING:
            return False
        node = self.plan.tasks[tid]
        if not self.resolved(node.observes):
            return False
        verdict = task_readiness(node, _Upstream(self.tasks), self.state.input, self.wf)
        return isinstance(verdict, Ready)

    def rendered_input(self, tid: str) -> Any:
        try:
            return render_input(
                self.definition, tid, _Upstream(self.tasks), self.state.input, self.wf
            )
        except ExpressionError as error:  # pragma: no cover - it rendered for attempt 1
            return {"error": str(error)}

    def succeeded(self, tid: str, attempt: int, output: Any) -> None:
        self.attempt_ended(tid, attempt, False, output)
        self.completed = (*self.completed, tid)
        if self.status is WorkflowStatus.COMPENSATING:  # a late success: undo it as well
            self.maybe_compensate()
            return
        self.advance(iter(self.plan.tasks[tid].dependents))
        self.maybe_succeed()

    def failed(self, tid: str, attempt: int, error: dict[str, Any]) -> None:
        if self.status is WorkflowStatus.COMPENSATING:
            # no new attempt once the saga undoes; observed, a service unaware of the
            # failure may still retry: its next attempt is awaited (Retrying)
            self.attempt_failed(tid, attempt, False, error, final=not self.state.observed)
            self.maybe_compensate()
        elif not self.attempt_failed(tid, attempt, False, error):
            self.workflow_failed(tid, error)

    def maybe_succeed(self) -> None:
        if self.status is not WorkflowStatus.RUNNING:
            return
        for task in self.tasks.values():
            if task.status not in RESOLVED:
                return
        try:
            output = render_output(
                self.definition, _Upstream(self.tasks), self.state.input, self.wf
            )
        except ExpressionError as error:
            self.finish(
                WorkflowStatus.FAILED,
                error={"type": "ExpressionError", "message": f"output: {error}", "task_id": None},
            )
            return
        self.finish(WorkflowStatus.SUCCEEDED, output=output)

    # -- workflow-level

    def workflow_failed(self, tid: str, error: dict[str, Any]) -> None:
        failure = {"type": error["type"], "message": error["message"], "task_id": tid}
        if self.definition.on_failure == "fail":
            self.timers = {k: t for k, t in self.timers.items() if t.purpose == "workflow_timeout"}
            self.finish(WorkflowStatus.FAILED, error=failure)
            return
        # a saga waits for the attempts still running: one that succeeds late must be
        # undone too, so their timeouts stay armed; retries are dropped (no new attempt)
        self.timers = {k: t for k, t in self.timers.items() if t.purpose != "retry"}
        self.error = failure
        self.move(WorkflowStatus.COMPENSATING, error=failure)
        self.queue = tuple(compensation_order(self.definition, self.completed))
        self.maybe_compensate()

    def maybe_compensate(self) -> None:
        """Start undoing once no forward attempt runs any more (the queue is final then).

        Observed (the tracker), a Retrying task may still be retried by a service that has
        not heard of the failure yet: its last word is awaited too. An observed late
        success can also come while undoing: it joins the queue behind the undo in progress.
        """
        waiting = (
            {TaskStatus.RUNNING, TaskStatus.RETRYING}
            if self.state.observed
            else {TaskStatus.RUNNING}
        )
        if any(task.status in waiting for task in self.tasks.values()):
            return
        if any(self.startable(tid) for tid in self.tasks):
            return  # observed: a service unaware of the failure runs it, or says it declines
        undone = {t for t, c in self.compensations.items() if c.status is TaskStatus.SUCCEEDED}
        head = self.queue[:1] if self.queue and self.queue[0] in self.compensations else ()
        order = compensation_order(self.definition, self.completed)
        self.queue = (*head, *(t for t in order if t not in undone and t not in head))
        if not head:
            self.next_compensation()

    def move(
        self, status: WorkflowStatus, *, output: Any = None, error: dict[str, Any] | None = None
    ) -> None:
        self.record(None, self.status.value, status.value, output=output, error=error)
        self.status = status

    def finish(
        self, status: WorkflowStatus, *, output: Any = None, error: dict[str, Any] | None = None
    ) -> None:
        self.move(status, output=output, error=error)
        self.output = output
        self.error = error
        self.ended_at = self.now
        self.timers = {}
        self.commands.append(
            _finished(
                kind="workflow_finished",
                workflow_id=self.wf,
                status=status,
                output=output,
                error=error,
            )
        )

    # -- compensation

    def next_compensation(self) -> None:
        if not self.queue:
            self.finish(WorkflowStatus.COMPENSATED, error=self.error)
            return
        self.start_compensation(self.queue[0], 1)

    def start_compensation(self, tid: str, attempt: int, *, command: bool = True) -> None:
        before = self.compensations.get(tid)
        try:
            payload = render_compensation_input(
                self.definition, tid, _Upstream(self.tasks), self.state.input, self.wf
            )
        except ExpressionError as error:
            failure = {
                "type": "ExpressionError",
                "message": f"compensate.input: {error}",
                "retryable": False,
            }
            self.set_compensation(
                tid,
                _new_task(
                    status=TaskStatus.FAILED,
                    attempts=attempt,
                    output=None,
                    error=failure,
                    started_at=self.now,
                    ended_at=self.now,
                ),
            )
            self.compensation_failed(tid, failure)
            return
        task = _new_task(
            status=TaskStatus.RUNNING,
            attempts=attempt,
            output=None,
            error=None,
            started_at=before.started_at if before else self.now,
            ended_at=None,
        )
        self.set_compensation(tid, task, input=payload)
        if not command:
            return
        self.commands.append(
            run_task(self.definition, self.wf, tid, attempt, payload, compensation=True)
        )
        self.arm_timeout(tid, attempt, compensation=True)

    def compensation_succeeded(self, tid: str, attempt: int, output: Any) -> None:
        self.attempt_ended(tid, attempt, True, output)
        self.queue = self.queue[1:]
        self.next_compensation()

    def compensation_observed(self, tid: str, attempt: int, output: Any) -> None:
        """A queued compensation that succeeded before its turn (see `_out_of_turn`)."""
        self.set_compensation(
            tid,
            _new_task(
                status=TaskStatus.SUCCEEDED,
                attempts=attempt,
                output=output,
                error=None,
                started_at=self.now,
                ended_at=self.now,
            ),
        )
        self.queue = tuple(t for t in self.queue if t != tid)

    def compensation_attempt_failed(self, tid: str, attempt: int, error: dict[str, Any]) -> None:
        if not self.attempt_failed(tid, attempt, True, error):
            self.compensation_failed(tid, error)

    def compensation_failed(self, tid: str, error: dict[str, Any]) -> None:
        self.finish(
            WorkflowStatus.FAILED,
            error={
                "type": "CompensationFailed",
                "message": f"compensation of task '{tid}' failed: {error['type']}: {error['message']}",
                "task_id": tid,
                "cause": self.error,
            },
        )


# -- commands ----------------------------------------------------------------


def run_task(
    definition: Definition,
    workflow_id: str,
    task_id: str,
    attempt: int,
    input: Any,
    *,
    compensation: bool,
) -> RunTask:
    """The command for one attempt of a task (or of its compensation): the one place ids are made."""
    spec = definition.plan.tasks[task_id].spec
    if compensation:
        assert spec.compensate is not None
        return _run_task(
            kind="run_task",
            command_id=ids.command_id(workflow_id, task_id, attempt, True),
            workflow_id=workflow_id,
            task_id=task_id,
            task_type=spec.compensate.type,
            attempt=attempt,
            input=input,
            idempotency_key=ids.idempotency_key(workflow_id, task_id, True),
            timeout=spec.compensate.timeout,
            compensation=True,
        )
    return _run_task(
        kind="run_task",
        command_id=ids.command_id(workflow_id, task_id, attempt, False),
        workflow_id=workflow_id,
        task_id=task_id,
        task_type=spec.type,
        attempt=attempt,
        input=input,
        idempotency_key=ids.idempotency_key(workflow_id, task_id, False),
        timeout=spec.timeout,
        compensation=False,
    )


def in_flight(definition: Definition, state: WorkflowState) -> list[RunTask]:
    """The ``RunTask`` commands of the attempts ``state`` is waiting for, as first issued.

    For a shell restoring a state from its changelog: the commands of the last
    decision may not have reached the broker, so they are issued again (same
    ids, same input, taken from the history). Tasks abandoned because the
    workflow left Running are not included.
    """
    if state.status not in (WorkflowStatus.RUNNING, WorkflowStatus.COMPENSATING):
        return []
    # forward attempts still running (a saga waits for them before it undoes anything)
    waiting = [(tid, t, False) for tid, t in state.tasks.items() if t.status is TaskStatus.RUNNING]
    if state.status is WorkflowStatus.COMPENSATING and state.compensation_queue:
        tid = state.compensation_queue[0]
        current = state.compensations.get(tid)
        if current and current.status is TaskStatus.RUNNING:
            waiting.append((tid, current, True))
    inputs: dict[tuple[str, int | None, bool], Any] = {}
    for entry in state.history:
        if entry.to_state == TaskStatus.RUNNING and entry.task_id:
            inputs[(entry.task_id, entry.attempt, entry.compensation)] = entry.input
    return [
        run_task(
            definition,
            state.workflow_id,
            tid,
            t.attempts,
            inputs.get((tid, t.attempts, compensation)),
            compensation=compensation,
        )
        for tid, t, compensation in waiting
    ]


# -- event handlers: each returns False when the event changes nothing --------


def _start(
    definition: Definition, event: Started, now: float
) -> tuple[WorkflowState, list[Command]]:
    plan = definition.plan
    state = _state(
        workflow_id=event.workflow_id,
        name=definition.name,
        version=definition.version,
        status=WorkflowStatus.RUNNING,
        input=event.input,
        output=None,
        error=None,
        started_at=now,
        ended_at=None,
        seed=event.seed,
        observed=event.observed,
        tasks={tid: _PENDING for tid in plan.order},
        timers={},
        completed=(),
        compensations={},
        compensation_queue=(),
        history=(),
    )
    step = _Step(definition, state, now)
    step.record(None, None, WorkflowStatus.RUNNING.value, input=event.input)
    problems = definition.input_errors(event.input)
    if problems:
        step.finish(
            WorkflowStatus.FAILED,
            error={"type": "InputError", "message": "; ".join(problems), "task_id": None},
        )
        return step.result()
    if definition.timeout is not None:
        step.schedule(
            ids.workflow_timer(event.workflow_id),
            _timer(
                due=now + definition.timeout,
                purpose="workflow_timeout",
                task_id=None,
                attempt=None,
                compensation=False,
            ),
        )
    step.advance(plan.roots)
    return step.result()


_PENDING = TaskState()


def _observe_next_attempt(step: _Step, tid: str, attempt: int, compensation: bool) -> bool:
    """Observe-only: attempt N+1's outcome while Retrying after N means N+1 started without us.

    While a saga undoes, a service unaware of the failure may also start a task that
    became ready: its first attempt's outcome is taken the same way.
    """
    task = step.compensations.get(tid) if compensation else step.tasks.get(tid)
    if task is None:
        return False
    if not compensation and attempt == 1 and step.startable(tid):
        step.start_attempt(tid, 1, step.rendered_input(tid), command=False)
        return True
    if task.status is not TaskStatus.RETRYING or attempt != task.attempts + 1:
        return False
    step.timers.pop(ids.retry_timer(step.wf, tid, attempt, compensation), None)
    if compensation:
        step.start_compensation(tid, attempt, command=False)
    else:
        step.start_attempt(tid, attempt, step.rendered_input(tid), command=False)
    return True


def _current(step: _Step, tid: str, attempt: int, compensation: bool) -> bool:
    """Whether an outcome for (tid, attempt) is the one the state is waiting for."""
    if compensation:
        if step.status is not WorkflowStatus.COMPENSATING or not step.queue or step.queue[0] != tid:
            return False
        task = step.compensations.get(tid)
    else:
        # a saga in Compensating still waits for the forward attempts that were running
        if step.status not in (WorkflowStatus.RUNNING, WorkflowStatus.COMPENSATING):
            return False
        task = step.tasks.get(tid)
    if task is None:
        return False
    if task.status is TaskStatus.RUNNING and task.attempts == attempt:
        return True
    if step.status is WorkflowStatus.COMPENSATING and not compensation and not step.state.observed:
        return False  # no new forward attempt once the saga undoes (a service may, unaware)
    return _observe_next_attempt(step, tid, attempt, compensation)


def _out_of_turn(step: _Step, tid: str, compensation: bool) -> bool:
    """Observe-only: a compensation outcome for a queued task that is not at the head.

    The conductor runs compensations one at a time, so it never sees this; choreography
    participants undo independent branches in parallel (reverse dependency order), and
    the tracker must accept their outcomes in any order.
    """
    return compensation and step.status is WorkflowStatus.COMPENSATING and tid in step.queue[1:]


def _on_succeeded(step: _Step, event: TaskSucceeded) -> bool:
    if _out_of_turn(step, event.task_id, event.compensation):
        step.compensation_observed(event.task_id, event.attempt, event.output)
        return True
    if not _current(step, event.task_id, event.attempt, event.compensation):
        return False
    if event.compensation:
        step.compensation_succeeded(event.task_id, event.attempt, event.output)
    else:
        step.succeeded(event.task_id, event.attempt, event.output)
    return True


def _on_failed(step: _Step, event: TaskFailed) -> bool:
    if not _current(step, event.task_id, event.attempt, event.compensation):
        return False
    error = {"type": event.error_type, "message": event.message, "retryable": event.retryable}
    if event.compensation:
        step.compensation_attempt_failed(event.task_id, event.attempt, error)
    else:
        step.failed(event.task_id, event.attempt, error)
    return True


def _on_timer(step: _Step, event: TimerFired) -> bool:
    timer = step.timers.pop(event.timer_id, None)
    if timer is None:
        return False
    if timer.purpose == "workflow_timeout":
        timeout = step.definition.timeout
        step.finish(
            WorkflowStatus.TIMED_OUT,
            error={
                "type": "WorkflowTimeout",
                "message": f"workflow timed out after {timeout:g}s",
                "task_id": None,
            },
        )
        return True
    tid, attempt = timer.task_id, timer.attempt
    assert tid is not None and attempt is not None
    if timer.purpose == "retry":
        if timer.compensation:
            task = step.compensations.get(tid)
            if (
                step.status is WorkflowStatus.COMPENSATING
                and task is not None
                and task.status is TaskStatus.RETRYING
                and task.attempts == attempt - 1
            ):
                step.start_compensation(tid, attempt)
        else:
            forward = step.tasks[tid]
            if (
                step.status is WorkflowStatus.RUNNING
                and forward.status is TaskStatus.RETRYING
                and forward.attempts == attempt - 1
            ):
                step.start_attempt(tid, attempt, step.rendered_input(tid))
        return True
    # attempt_timeout: that attempt failed, retryable
    if not _current(step, tid, attempt, timer.compensation):
        return True
    spec = step.plan.tasks[tid].spec
    limit = spec.compensate.timeout if timer.compensation and spec.compensate else spec.timeout
    error = {
        "type": "Timeout",
        "message": f"attempt {attempt} timed out after {limit or 0:g}s",
        "retryable": True,
    }
    if timer.compensation:
        step.compensation_attempt_failed(tid, attempt, error)
    else:
        step.failed(tid, attempt, error)
    return True


def _on_cancel(step: _Step, event: CancelRequested) -> bool:
    step.finish(
        WorkflowStatus.CANCELLED,
        error={"type": "Cancelled", "message": event.reason or "cancel requested", "task_id": None},
    )
    return True


_HANDLERS: Mapping[type, Callable[[_Step, Any], bool]] = {
    TaskSucceeded: _on_succeeded,
    TaskFailed: _on_failed,
    TimerFired: _on_timer,
    CancelRequested: _on_cancel,
}
