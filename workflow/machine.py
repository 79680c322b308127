"""The workflow state machine: ``decide(definition, state, event, now) -> (state, commands)``.

Sans-I/O: events in, commands out, immutable state. Time (``now``, epoch
seconds) and the seed for retry jitter are passed in, so replaying the same
events gives the same states and commands. The conductor, the passive tracker
and the tests all run this one function.

Events: ``Started``, ``TaskSucceeded``, ``TaskFailed``, ``TimerFired``,
``CancelRequested``. Commands: ``RunTask`` (``compensation=True`` for a
compensation), ``ScheduleTimer``, ``WorkflowFinished``. An attempt belongs to a
``Step``: a task, or its compensation (the same life, in two lanes).

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
- an attempt timeout fails that attempt (retryable, error type ``Timeout``;
  ``failures.attempt_timed_out``, as the services report it too).
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
- the workflow timeout (while Running or Compensating) -> TimedOut. Task states
  are left as they were.
- cancel (while Running): no new attempt. ``on_failure: fail`` -> Cancelled at
  once (attempts still running are abandoned); ``compensate`` -> Compensating as
  after a failure (running attempts awaited, Succeeded tasks undone), then
  Cancelled instead of Compensated (Failed if a compensation fails for good).
  A workflow already Compensating goes on as it was.
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
from typing import Any, overload

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
from podium.workflow.failures import attempt_timed_out
from podium.workflow.ids import jitter_salt
from podium.workflow.messages import (
    CancelRequested,
    Command,
    Event,
    RunTask,
    ScheduleTimer,
    Started,
    Step,
    TaskFailed,
    TaskSucceeded,
    TimerFired,
    WorkflowFinished,
    command_adapter,
    event_adapter,
)
from podium.workflow.state import (
    PENDING,
    HistoryEntry,
    IllegalTransition,
    TaskState,
    Timer,
    WorkflowState,
)
from podium.workflow.states import RESOLVED, TERMINAL, TaskStatus, WorkflowStatus

__all__ = [
    "TERMINAL",
    "CancelRequested",
    "Command",
    "Event",
    "HistoryEntry",
    "IllegalTransition",
    "RunTask",
    "ScheduleTimer",
    "Started",
    "Step",
    "TaskFailed",
    "TaskState",
    "TaskStatus",
    "TaskSucceeded",
    "Timer",
    "TimerFired",
    "WorkflowFinished",
    "WorkflowState",
    "WorkflowStatus",
    "cancelled",
    "command_adapter",
    "decide",
    "event_adapter",
    "in_flight",
    "run_task",
]


#: the error type of a cancelled workflow (its ``task_id`` is None: no task failed)
CANCELLED = "Cancelled"


def _cancelled(error: dict[str, Any] | None) -> bool:
    """Whether a saga was set off by a cancel rather than a failed task."""
    return error is not None and error.get("type") == CANCELLED and error.get("task_id") is None


def cancelled(state: WorkflowState) -> bool:
    """Whether a cancel took: the workflow ended Cancelled, or undoes (or undid) after one."""
    return _cancelled(state.error) or state.status is WorkflowStatus.CANCELLED


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
    decision = _Decision(definition, state, now)
    try:
        changed = _HANDLERS[type(event)](decision, event)
    except IllegalTransition as error:
        error.add_note(f"workflow {state.workflow_id}, on {event!r}")
        raise
    if changed:
        return decision.result()
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


class _Decision:
    """Mutable scratch space for one decision; ``result()`` freezes it into a new state.

    Every task state, timer, history entry and command it makes comes from the named
    constructors of ``state`` and ``messages``, which check what matters.
    """

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
        state = self.state.evolved(
            status=self.status,
            tasks=self.tasks,
            timers=self.timers,
            completed=self.completed,
            compensations=self.compensations,
            compensation_queue=self.queue,
            history=self.state.history + tuple(self.history),
            output=self.output,
            error=self.error,
            ended_at=self.ended_at,
        )
        return state, self.commands

    # -- recording

    def record(
        self,
        before: WorkflowStatus | None,
        after: WorkflowStatus,
        *,
        input: Any = None,
        output: Any = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        """A workflow-level transition."""
        self.history.append(
            HistoryEntry.of_workflow(
                self.now, before, after, input=input, output=output, error=error
            )
        )

    def schedule(self, timer_id: str, timer: Timer) -> None:
        self.timers[timer_id] = timer
        self.commands.append(timer.command(timer_id, self.wf))

    # -- one step: a task, or its compensation; the same life in two lanes

    def task(self, step: Step) -> TaskState:
        """The step's current state (a compensation not started yet is Pending)."""
        if step.compensation:
            return self.compensations.get(step.task_id, PENDING)
        return self.tasks[step.task_id]

    def put(
        self, step: Step, task: TaskState, *, input: Any = None, reason: str | None = None
    ) -> None:
        """The step moves to ``task``; the move is recorded."""
        tid = step.task_id
        if step.compensation:
            before = self.compensations.get(tid, PENDING)
            self.compensations = {**self.compensations, tid: task}
        else:
            before = self.tasks[tid]
            self.tasks[tid] = task
        self.history.append(
            HistoryEntry.of_step(self.now, step, before.status, task, input=input, reason=reason)
        )

    def command(self, step: Step, attempt: int, input: Any) -> None:
        """Send the attempt's command and arm its timeout, if the step has one."""
        spec = self.definition.spec_of(step)
        self.commands.append(_run_task(spec, self.wf, step, attempt, input))
        timeout = spec.timeout
        if timeout is not None:
            self.schedule(
                ids.attempt_timer(self.wf, step, attempt),
                Timer.attempt_timeout(self.now + timeout, step, attempt),
            )

    def attempt_ended(self, step: Step, attempt: int, output: Any) -> None:
        """The attempt succeeded: disarm its timeout, record the output."""
        self.timers.pop(ids.attempt_timer(self.wf, step, attempt), None)
        self.put(step, self.task(step).succeeded(attempt, output, self.now))

    def attempt_failed(
        self, step: Step, attempt: int, error: dict[str, Any], *, final: bool = False
    ) -> bool:
        """Retrying with a backoff timer (True), or Failed for good (False)."""
        self.timers.pop(ids.attempt_timer(self.wf, step, attempt), None)
        policy = self.definition.spec_of(step).retry
        before = self.task(step)
        retry = bool(error["retryable"]) and attempt < policy.max_attempts and not final
        if not retry:
            self.put(step, before.failed(attempt, error, self.now))
            return False
        self.put(step, before.retrying(attempt, error))
        delay = policy.delay(attempt, jitter_salt(self.state.seed, step))
        self.schedule(
            ids.retry_timer(self.wf, step, attempt + 1),
            Timer.retry(self.now + delay, step, attempt + 1),
        )
        return True

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
            task = self.tasks[tid]
            if task.status is not TaskStatus.PENDING or not self.resolved(tasks[tid].observes):
                continue
            verdict = task_readiness(tasks[tid], upstream, self.state.input, self.wf)
            if isinstance(verdict, Ready):
                self.start_attempt(tid, 1, verdict.input)
            elif isinstance(verdict, Skip):
                self.put(Step(tid), task.skipped(self.now), reason=verdict.reason)
                resolved = True
                for child in tasks[tid].dependents:
                    heappush(heap, (tasks[child].index, child))
            elif isinstance(verdict, Fail):
                error = {"type": verdict.error_type, "message": verdict.message, "retryable": False}
                self.put(Step(tid), task.rejected(error, self.now))
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
        step = Step(tid)
        task = self.tasks[tid].running(attempt, self.now)
        self.put(step, task, input=input, reason=None if command else "observed")
        if command:
            self.command(step, attempt, input)

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

    def succeeded(self, step: Step, attempt: int, output: Any) -> None:
        tid = step.task_id
        self.attempt_ended(step, attempt, output)
        self.completed = (*self.completed, tid)
        if self.status is WorkflowStatus.COMPENSATING:  # a late success: undo it as well
            self.maybe_compensate()
            return
        self.advance(iter(self.plan.tasks[tid].dependents))
        self.maybe_succeed()

    def failed(self, step: Step, attempt: int, error: dict[str, Any]) -> None:
        if self.status is WorkflowStatus.COMPENSATING:
            # no new attempt once the saga undoes; observed, a service unaware of the
            # failure may still retry: its next attempt is awaited (Retrying)
            self.attempt_failed(step, attempt, error, final=not self.state.observed)
            self.maybe_compensate()
        elif not self.attempt_failed(step, attempt, error):
            self.workflow_failed(step.task_id, error)

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
        # the workflow's error is its failing task's error, retryable flag and all
        failure = {
            "type": error["type"],
            "message": error["message"],
            "retryable": bool(error.get("retryable", False)),
            "task_id": tid,
        }
        if self.definition.on_failure == "fail":
            self.timers = {k: t for k, t in self.timers.items() if t.purpose == "workflow_timeout"}
            self.finish(WorkflowStatus.FAILED, error=failure)
            return
        self.undo(failure)

    def cancelled(self, reason: str) -> None:
        """Cancel: no new attempt; undo what succeeded when the policy is to compensate."""
        error = {"type": CANCELLED, "message": reason or "cancel requested", "task_id": None}
        if self.definition.on_failure == "fail":
            self.finish(WorkflowStatus.CANCELLED, error=error)
        else:
            self.undo(error)

    def undo(self, failure: dict[str, Any]) -> None:
        """The saga: Compensating, then the compensations in reverse completion order."""
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
        self.record(self.status, status, output=output, error=error)
        self.status = status

    def finish(
        self, status: WorkflowStatus, *, output: Any = None, error: dict[str, Any] | None = None
    ) -> None:
        self.move(status, output=output, error=error)
        self.output = output
        self.error = error
        self.ended_at = self.now
        self.timers = {}
        self.commands.append(WorkflowFinished.of(self.wf, status, output, error))

    # -- compensation

    def next_compensation(self) -> None:
        if not self.queue:
            undone = (
                WorkflowStatus.CANCELLED if _cancelled(self.error) else WorkflowStatus.COMPENSATED
            )
            self.finish(undone, error=self.error)
            return
        self.start_compensation(self.queue[0], 1)

    def start_compensation(self, tid: str, attempt: int, *, command: bool = True) -> None:
        step = Step(tid, compensation=True)
        before = self.task(step)
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
            self.put(step, before.failed_to_start(attempt, failure, self.now))
            self.compensation_failed(tid, failure)
            return
        self.put(step, before.running(attempt, self.now), input=payload)
        if command:
            self.command(step, attempt, payload)

    def compensation_succeeded(self, step: Step, attempt: int, output: Any) -> None:
        self.attempt_ended(step, attempt, output)
        self.queue = self.queue[1:]
        self.next_compensation()

    def compensation_observed(self, step: Step, attempt: int, output: Any) -> None:
        """A queued compensation that succeeded before its turn (see `_out_of_turn`)."""
        self.put(step, self.task(step).succeeded_unseen(attempt, output, self.now))
        self.queue = tuple(t for t in self.queue if t != step.task_id)

    def compensation_attempt_failed(self, step: Step, attempt: int, error: dict[str, Any]) -> None:
        if not self.attempt_failed(step, attempt, error):
            self.compensation_failed(step.task_id, error)

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
    definition: Definition, workflow_id: str, step: Step, attempt: int, input: Any
) -> RunTask:
    """The command for one attempt of a step: the one place command ids are made."""
    return _run_task(definition.spec_of(step), workflow_id, step, attempt, input)


def _run_task(
    spec: TaskSpec | Compensation, workflow_id: str, step: Step, attempt: int, input: Any
) -> RunTask:
    return RunTask.attempt_of(
        step,
        attempt,
        workflow_id=workflow_id,
        task_type=spec.type,
        input=input,
        command_id=ids.command_id(workflow_id, step, attempt),
        idempotency_key=ids.idempotency_key(workflow_id, step),
        timeout=spec.timeout,
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
    waiting = [
        (Step(tid), t.attempts) for tid, t in state.tasks.items() if t.status is TaskStatus.RUNNING
    ]
    if state.status is WorkflowStatus.COMPENSATING and state.compensation_queue:
        tid = state.compensation_queue[0]
        current = state.compensations.get(tid)
        if current and current.status is TaskStatus.RUNNING:
            waiting.append((Step(tid, compensation=True), current.attempts))
    inputs: dict[tuple[Step, int | None], Any] = {}
    for entry in state.history:
        if entry.to_state == TaskStatus.RUNNING and entry.task_id:
            inputs[(Step(entry.task_id, entry.compensation), entry.attempt)] = entry.input
    return [
        run_task(definition, state.workflow_id, step, attempt, inputs.get((step, attempt)))
        for step, attempt in waiting
    ]


# -- event handlers: each returns False when the event changes nothing --------


def _start(
    definition: Definition, event: Started, now: float
) -> tuple[WorkflowState, list[Command]]:
    plan = definition.plan
    state = WorkflowState.started(
        event.workflow_id,
        definition.name,
        definition.version,
        event.input,
        seed=event.seed,
        observed=event.observed,
        tasks=plan.order,
        now=now,
    )
    decision = _Decision(definition, state, now)
    decision.record(None, WorkflowStatus.RUNNING, input=event.input)
    problems = definition.input_errors(event.input)
    if problems:
        decision.finish(
            WorkflowStatus.FAILED,
            error={"type": "InputError", "message": "; ".join(problems), "task_id": None},
        )
        return decision.result()
    if definition.timeout is not None:
        decision.schedule(
            ids.workflow_timer(event.workflow_id), Timer.workflow_timeout(now + definition.timeout)
        )
    decision.advance(plan.roots)
    return decision.result()


def _observe_next_attempt(decision: _Decision, step: Step, attempt: int) -> bool:
    """Observe-only: attempt N+1's outcome while Retrying after N means N+1 started without us.

    While a saga undoes, a service unaware of the failure may also start a task that
    became ready: its first attempt's outcome is taken the same way.
    """
    tid, compensation = step
    task = decision.compensations.get(tid) if compensation else decision.tasks.get(tid)
    if task is None:
        return False
    if not compensation and attempt == 1 and decision.startable(tid):
        decision.start_attempt(tid, 1, decision.rendered_input(tid), command=False)
        return True
    if task.status is not TaskStatus.RETRYING or attempt != task.attempts + 1:
        return False
    decision.timers.pop(ids.retry_timer(decision.wf, step, attempt), None)
    if compensation:
        decision.start_compensation(tid, attempt, command=False)
    else:
        decision.start_attempt(tid, attempt, decision.rendered_input(tid), command=False)
    return True


def _current(decision: _Decision, step: Step, attempt: int) -> bool:
    """Whether an outcome of this attempt of the step is the one the state is waiting for."""
    tid, compensation = step
    status = decision.status
    if compensation:
        if status is not WorkflowStatus.COMPENSATING or not decision.queue:
            return False
        if decision.queue[0] != tid:
            return False
        task = decision.compensations.get(tid)
    else:
        # a saga in Compensating still waits for the forward attempts that were running
        if status is not WorkflowStatus.RUNNING and status is not WorkflowStatus.COMPENSATING:
            return False
        task = decision.tasks.get(tid)
    if task is None:
        return False
    if task.status is TaskStatus.RUNNING and task.attempts == attempt:
        return True
    if status is WorkflowStatus.COMPENSATING and not compensation and not decision.state.observed:
        return False  # no new forward attempt once the saga undoes (a service may, unaware)
    return _observe_next_attempt(decision, step, attempt)


def _out_of_turn(decision: _Decision, step: Step, attempt: int) -> bool:
    """Observe-only: a compensation outcome for a queued task that is not at the head.

    The conductor runs compensations one at a time, so it never sees this; choreography
    participants undo independent branches in parallel (reverse dependency order), and
    the tracker must accept their outcomes in any order. (Attempts count from 1: an
    outcome of attempt 0 is no attempt of a step.)
    """
    return (
        step.compensation
        and decision.status is WorkflowStatus.COMPENSATING
        and step.task_id in decision.queue[1:]
        and attempt >= 1
    )


def _on_succeeded(decision: _Decision, event: TaskSucceeded) -> bool:
    step = event.step
    if _out_of_turn(decision, step, event.attempt):
        decision.compensation_observed(step, event.attempt, event.output)
        return True
    if not _current(decision, step, event.attempt):
        return False
    if step.compensation:
        decision.compensation_succeeded(step, event.attempt, event.output)
    else:
        decision.succeeded(step, event.attempt, event.output)
    return True


def _on_failed(decision: _Decision, event: TaskFailed) -> bool:
    step = event.step
    if not _current(decision, step, event.attempt):
        return False
    error = {"type": event.error_type, "message": event.message, "retryable": event.retryable}
    _attempt_failed(decision, step, event.attempt, error)
    return True


def _attempt_failed(decision: _Decision, step: Step, attempt: int, error: dict[str, Any]) -> None:
    if step.compensation:
        decision.compensation_attempt_failed(step, attempt, error)
    else:
        decision.failed(step, attempt, error)


def _on_timer(decision: _Decision, event: TimerFired) -> bool:
    timer = decision.timers.pop(event.timer_id, None)
    if timer is None:
        return False
    step = timer.step
    if step is None:  # the workflow's timeout
        timeout = decision.definition.timeout
        decision.finish(
            WorkflowStatus.TIMED_OUT,
            error={
                "type": "WorkflowTimeout",
                "message": f"workflow timed out after {timeout:g}s",
                "task_id": None,
            },
        )
        return True
    attempt = timer.attempt
    assert attempt is not None
    if timer.purpose == "retry":
        _retry_due(decision, step, attempt)
        return True
    # attempt_timeout: that attempt failed, retryable
    if not _current(decision, step, attempt):
        return True
    error = attempt_timed_out(attempt, decision.definition.spec_of(step).timeout)
    _attempt_failed(decision, step, attempt, error)
    return True


def _retry_due(decision: _Decision, step: Step, attempt: int) -> None:
    """A retry timer fired: attempt ``attempt`` starts, if the step still waits for it."""
    tid = step.task_id
    task = decision.task(step)
    if task.status is not TaskStatus.RETRYING or task.attempts != attempt - 1:
        return
    if step.compensation and decision.status is WorkflowStatus.COMPENSATING:
        decision.start_compensation(tid, attempt)
    elif not step.compensation and decision.status is WorkflowStatus.RUNNING:
        decision.start_attempt(tid, attempt, decision.rendered_input(tid))


def _on_cancel(decision: _Decision, event: CancelRequested) -> bool:
    if decision.status is not WorkflowStatus.RUNNING:
        return False  # already undoing after a failure: the saga goes on
    decision.cancelled(event.reason)
    return True


_HANDLERS: Mapping[type, Callable[[_Decision, Any], bool]] = {
    TaskSucceeded: _on_succeeded,
    TaskFailed: _on_failed,
    TimerFired: _on_timer,
    CancelRequested: _on_cancel,
}
