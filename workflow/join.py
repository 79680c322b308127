"""What one choreography participant knows of one workflow, and what it does next.

Pure: no Kafka, no clock (``now`` is passed in). The participant shell feeds it
the workflow's trigger, the outcome events it observes and the results of its
own handlers, and carries out the actions it returns. The join rule itself
(ready / skipped / waiting / aborted) is the core's ``workflow.choreography``,
the same code the orchestration state machine runs.

A participant owns the tasks whose type its service handles, and the
compensations whose type it handles. Compensation runs in reverse dependency
order: a task's compensation starts once every Succeeded descendant that has
a compensation has finished compensating.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from podium.workflow.choreography import (
    Abort,
    Fail,
    Ready,
    Skip,
    observes,
    readiness,
    render_compensation_input,
)
from podium.workflow.definition import Definition, RetryPolicy
from podium.workflow.expressions import ExpressionError
from podium.workflow.ids import jitter_salt, seed_of
from podium.workflow.messages import Step
from podium.workflow.states import TaskStatus as S


class Mine(BaseModel):
    """One task (or one compensation) this participant runs."""

    status: S = S.PENDING
    attempt: int = 0
    input: Any = None
    retry_due: float | None = None


class Join(BaseModel):
    """The participant's state of one workflow; persisted to its changelog as JSON."""

    workflow_id: str
    name: str
    version: int
    #: None until the trigger has been seen (an outcome can overtake it across topics)
    input: dict[str, Any] | None = None
    #: resolved outcomes of every task of the workflow: task id -> (status, output)
    seen: dict[str, tuple[S, Any]] = Field(default_factory=dict)
    tasks: dict[str, Mine] = Field(default_factory=dict)
    compensations: dict[str, Mine] = Field(default_factory=dict)
    #: compensation status of every task, this participant's or observed
    undone: dict[str, S] = Field(default_factory=dict)
    #: no task of the workflow goes on: one failed for good, or the workflow was cancelled
    failed: bool = False
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Run:
    task_id: str
    attempt: int
    input: Any
    compensation: bool = False

    @property
    def step(self) -> Step:
        return Step(self.task_id, self.compensation)


@dataclass(frozen=True, slots=True)
class Report:
    """Publish an outcome this participant decided without running a handler."""

    task_id: str
    status: S  # Skipped or Failed
    reason: str
    error_type: str | None = None
    attempt: int = 1
    compensation: bool = False

    @property
    def step(self) -> Step:
        return Step(self.task_id, self.compensation)


@dataclass(frozen=True, slots=True)
class Retry:
    task_id: str
    due: float
    compensation: bool = False

    @property
    def step(self) -> Step:
        return Step(self.task_id, self.compensation)


Action = Run | Report | Retry


def owned(definition: Definition, task_types: set[str]) -> tuple[list[str], list[str]]:
    """(task ids, compensated task ids) this service handles in the definition."""
    tasks = [t.id for t in definition.tasks if t.type in task_types]
    comps = [t.id for t in definition.tasks if t.compensate and t.compensate.type in task_types]
    return tasks, comps


def watched_types(definitions: Iterable[Definition], task_types: set[str]) -> set[str]:
    """The task types whose outcome topics a participant handling `task_types` reads.

    The outcomes its tasks wait for (their `observes`: dependencies and the tasks their
    expressions name); and, where it has something to undo in a workflow that
    compensates, every type of that workflow: a failure anywhere starts the
    compensation, and its descendants' compensations must finish first.
    """
    watched: set[str] = set()
    for definition in definitions:
        tasks, comps = owned(definition, task_types)
        for task_id in tasks:
            watched |= {definition.task(t).type for t in observes(definition, task_id)}
        undoes = comps or any(definition.task(t).compensate for t in tasks)
        if undoes and definition.on_failure == "compensate":
            for spec in definition.tasks:
                watched.add(spec.type)
                if spec.compensate is not None:
                    watched.add(spec.compensate.type)
    return watched


def new_join(definition: Definition, workflow_id: str, task_types: set[str]) -> Join:
    tasks, comps = owned(definition, task_types)
    return Join(
        workflow_id=workflow_id,
        name=definition.name,
        version=definition.version,
        tasks={t: Mine() for t in tasks},
        compensations={t: Mine() for t in comps},
    )


def is_final_failure(policy: RetryPolicy, attempt: int, retryable: bool) -> bool:
    return not retryable or attempt >= policy.max_attempts


def mine_of(join: Join, step: Step) -> Mine:
    """This participant's state of one of its steps."""
    return (join.compensations if step.compensation else join.tasks)[step.task_id]


# -- inputs --------------------------------------------------------------------


def on_trigger(definition: Definition, join: Join, input: dict[str, Any]) -> list[Action]:
    if join.input is not None:
        return []  # the same trigger again
    join.input = input
    return advance(definition, join)


def on_observed(
    definition: Definition,
    join: Join,
    step: Step,
    status: S,
    output: Any,
    *,
    attempt: int,
    retryable: bool = True,
) -> list[Action]:
    """An outcome event of another participant's step (a task, or a compensation)."""
    task_id = step.task_id
    if step.compensation:
        if status == S.SUCCEEDED or (
            status == S.FAILED
            and is_final_failure(definition.spec_of(step).retry, attempt, retryable)
        ):
            join.undone[task_id] = status
        return advance(definition, join)
    if task_id in join.seen:
        return []  # duplicate, or a late outcome of an earlier attempt
    if status == S.FAILED:
        if not is_final_failure(definition.task(task_id).retry, attempt, retryable):
            return []  # the owner retries
        join.failed = True
    join.seen[task_id] = (status, output)
    return advance(definition, join)


def on_cancel(definition: Definition, join: Join) -> list[Action]:
    """The workflow's decider (the tracker) took a cancel: as after a failure, no task starts
    any more, retries are declined, and a saga undoes what succeeded."""
    if join.input is None or join.cancelled:
        return []
    join.cancelled = True
    join.failed = True
    return advance(definition, join)


def on_result(
    definition: Definition,
    join: Join,
    run: Run,
    status: S,
    output: Any,
    *,
    retryable: bool,
    now: float,
) -> list[Action]:
    """The result of one of this participant's own handler runs."""
    step = run.step
    mine = mine_of(join, step)
    if mine.status != S.RUNNING or mine.attempt != run.attempt:
        return []  # stale: restored and re-run meanwhile
    policy = definition.spec_of(step).retry
    if status == S.SUCCEEDED:
        mine.status = S.SUCCEEDED
    elif not is_final_failure(policy, run.attempt, retryable):
        mine.status = S.RETRYING
        salt = jitter_salt(seed_of(join.workflow_id), step)
        mine.retry_due = now + policy.delay(run.attempt, salt)
        return [Retry(run.task_id, mine.retry_due, run.compensation)]
    else:
        mine.status = S.FAILED
    if run.compensation:
        join.undone[run.task_id] = mine.status
    else:
        join.seen[run.task_id] = (mine.status, output)
        join.failed = join.failed or mine.status == S.FAILED
    return advance(definition, join)


def on_retry_due(join: Join, step: Step) -> list[Action]:
    task_id, compensation = step
    mine = mine_of(join, step)
    if mine.status != S.RETRYING:
        return []
    if join.failed and not compensation:
        # the workflow failed meanwhile: start no new work (as the conductor), and say so,
        # so that whoever waits for this task's last word (the tracker) hears it
        return [_decline(join, task_id, mine, "NotRetried", f"not retried: {_why(join)}")]
    mine.status = S.RUNNING
    mine.attempt += 1
    mine.retry_due = None
    return [Run(task_id, mine.attempt, mine.input, compensation)]


# -- the rules -----------------------------------------------------------------


def advance(definition: Definition, join: Join) -> list[Action]:
    """Start what has become ready; loop, since a skip can make another task ready."""
    if join.input is None:
        return []
    actions: list[Action] = []
    progressed = True
    while progressed:
        progressed = False
        for task_id, mine in join.tasks.items():
            if mine.status == S.PENDING:
                action = _evaluate(definition, join, task_id, mine)
                if action is not None:
                    actions.append(action)
                    # a skip or a failure resolves the task at once: look again
                    progressed = progressed or not isinstance(action, Run)
        if join.failed and definition.on_failure == "compensate":
            actions += _compensate(definition, join)
    return actions


def _decline(join: Join, task_id: str, mine: Mine, error_type: str, reason: str) -> Report:
    """A task of this participant's that will never run once the workflow failed: it is
    Failed for good, and reported, so that downstream joins and the tracker settle."""
    mine.status = S.FAILED
    join.seen[task_id] = (S.FAILED, None)
    return Report(task_id, S.FAILED, reason, error_type, attempt=mine.attempt + 1)


def _why(join: Join) -> str:
    return "the workflow was cancelled" if join.cancelled else "the workflow failed"


def _evaluate(definition: Definition, join: Join, task_id: str, mine: Mine) -> Action | None:
    verdict = readiness(definition, task_id, join.seen, join.input, join.workflow_id)
    if isinstance(verdict, Ready) and join.failed:
        # the workflow failed before this task started: it never does (as the conductor)
        return _decline(join, task_id, mine, "NotStarted", f"not started: {_why(join)}")
    if isinstance(verdict, Ready):
        mine.status, mine.attempt, mine.input = S.RUNNING, 1, verdict.input
        return Run(task_id, 1, verdict.input)
    if isinstance(verdict, Skip):
        mine.status = S.SKIPPED
        join.seen[task_id] = (S.SKIPPED, None)
        return Report(task_id, S.SKIPPED, verdict.reason)
    if isinstance(verdict, Fail):
        mine.status = S.FAILED
        join.seen[task_id] = (S.FAILED, None)
        join.failed = True
        return Report(task_id, S.FAILED, verdict.message, verdict.error_type)
    if isinstance(verdict, Abort):  # an upstream failed: this task never runs
        return _decline(join, task_id, mine, "UpstreamFailed", "not run: an upstream task failed")
    return None  # waiting


def _compensate(definition: Definition, join: Join) -> list[Action]:
    actions: list[Action] = []
    for task_id, mine in join.compensations.items():
        if mine.status != S.PENDING or join.seen.get(task_id, (None,))[0] != S.SUCCEEDED:
            continue
        if not _descendants_undone(definition, join, task_id):
            continue
        try:
            payload = render_compensation_input(
                definition, task_id, join.seen, join.input, join.workflow_id
            )
        except ExpressionError as error:
            mine.status = S.FAILED
            join.undone[task_id] = S.FAILED
            report = Report(task_id, S.FAILED, str(error), "ExpressionError", compensation=True)
            actions.append(report)
            continue
        mine.status, mine.attempt, mine.input = S.RUNNING, 1, payload
        actions.append(Run(task_id, 1, payload, compensation=True))
    return actions


def _descendants_undone(definition: Definition, join: Join, task_id: str) -> bool:
    """Every Succeeded descendant with a compensation has compensated successfully."""
    tasks = definition.plan.tasks
    stack = list(tasks[task_id].dependents)
    visited: set[str] = set()
    while stack:
        current = stack.pop()
        if current in visited:
            continue
        visited.add(current)
        spec = tasks[current].spec
        succeeded = join.seen.get(current, (None,))[0] == S.SUCCEEDED
        if succeeded and spec.compensate is not None and join.undone.get(current) != S.SUCCEEDED:
            return False
        stack.extend(tasks[current].dependents)
    return True


def settled(definition: Definition, join: Join) -> bool:
    """Nothing is left for this participant to do in the workflow: its join may go.

    Its own tasks are final (or will never start, the workflow having failed), and
    no compensation of its can still be called for: when it has compensations in a
    compensating workflow, that takes the whole workflow succeeded, or every task
    it undoes either undone or not Succeeded and not possibly running elsewhere.
    """
    if join.input is None:
        return False
    busy = (S.RUNNING, S.RETRYING)
    if any(m.status in busy for m in (*join.tasks.values(), *join.compensations.values())):
        return False
    compensating = definition.on_failure == "compensate" and bool(join.compensations)
    if not join.failed:
        if any(m.status == S.PENDING for m in join.tasks.values()):
            return False
        # a failure anywhere later would still call for this participant's undos
        return not compensating or all(t.id in join.seen for t in definition.tasks)
    if not compensating:
        return True
    for task_id, mine in join.compensations.items():
        if mine.status in (S.SUCCEEDED, S.FAILED) or _undo_failed_below(definition, join, task_id):
            continue  # done, or never to run: a compensation below it failed for good
        seen = join.seen.get(task_id)
        if seen is not None and seen[0] == S.SUCCEEDED:
            return False  # still to undo
        if seen is None:
            verdict = readiness(definition, task_id, join.seen, join.input, join.workflow_id)
            if isinstance(verdict, Ready):
                return False  # it may be running at its owner and succeed late
    return True


def _undo_failed_below(definition: Definition, join: Join, task_id: str) -> bool:
    """A descendant's compensation failed for good: the saga stops there (as the conductor)."""
    tasks = definition.plan.tasks
    stack, visited = list(tasks[task_id].dependents), set()
    while stack:
        current = stack.pop()
        if current not in visited:
            visited.add(current)
            if join.undone.get(current) == S.FAILED:
                return True
            stack.extend(tasks[current].dependents)
    return False


def in_flight(join: Join) -> list[Action]:
    """After a restore: re-run what was running, re-arm the retry timers."""
    actions: list[Action] = []
    for compensation, group in ((False, join.tasks), (True, join.compensations)):
        for task_id, mine in group.items():
            if mine.status == S.RUNNING:
                actions.append(Run(task_id, mine.attempt, mine.input, compensation))
            elif mine.status == S.RETRYING and mine.retry_due is not None:
                actions.append(Retry(task_id, mine.retry_due, compensation))
    return actions
