"""The join rule of one task, shared by both modes.

In choreography a service decides by itself, from the upstream outcome events
it has collected for a workflow, whether its task is ready (and with which
input), skipped, still waiting, or must not run because an upstream failed.
The orchestration state machine (``machine.py``) calls the very same
``readiness`` and ``render_*`` functions, so both modes and the tracker agree
on every skip, input and output.

``upstream`` maps a task id to its ``(state, output)``; ``state`` is a
``TaskStatus`` or its string value (``"Succeeded"``, ``"Skipped"``...).
A task observes its ``depends_on`` plus any other (transitively upstream) task
its ``when`` or ``input`` expressions name: ``observes(...)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podium.workflow.definition import CompiledTask, Definition
from podium.workflow.expressions import ExpressionError, Outcome, build_activation
from podium.workflow.states import RESOLVED, TaskStatus

__all__ = [
    "WAIT",
    "Abort",
    "Fail",
    "Readiness",
    "Ready",
    "Skip",
    "Wait",
    "compensation_order",
    "observes",
    "readiness",
    "render_compensation_input",
    "render_input",
    "render_output",
    "task_readiness",
    "to_compensate",
    "waits_for",
]


@dataclass(frozen=True, slots=True)
class Ready:
    """Run the task with this rendered input."""

    input: Any


@dataclass(frozen=True, slots=True)
class Skip:
    """The task is Skipped (``when`` false, or an upstream skipped with ``skip_if_upstream_skipped``)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Wait:
    """Some observed upstream outcome is not resolved yet."""


WAIT = Wait()


@dataclass(frozen=True, slots=True)
class Abort:
    """An upstream task Failed: this task never runs (the workflow fails or compensates)."""

    task_id: str


@dataclass(frozen=True, slots=True)
class Fail:
    """``when`` or the input mapping failed to evaluate: the task fails, not retryable."""

    error_type: str
    message: str


Readiness = Ready | Skip | Wait | Abort | Fail


def waits_for(definition: Definition, task_id: str) -> frozenset[str]:
    """The tasks whose resolution the task's join waits for (its ``depends_on``)."""
    return frozenset(definition.task(task_id).depends_on)


def observes(definition: Definition, task_id: str) -> frozenset[str]:
    """Every task whose outcome the service must collect: ``depends_on`` plus tasks its expressions name."""
    return frozenset(definition.plan.tasks[task_id].observes)


def readiness(
    definition: Definition,
    task_id: str,
    upstream: Mapping[str, Outcome],
    workflow_input: Any,
    workflow_id: str = "",
) -> Readiness:
    """Apply the join rule to the outcomes collected so far."""
    return task_readiness(definition.plan.tasks[task_id], upstream, workflow_input, workflow_id)


def task_readiness(
    task: CompiledTask, upstream: Mapping[str, Outcome], workflow_input: Any, workflow_id: str = ""
) -> Readiness:
    """``readiness`` for a task of a compiled plan (the state machine's entry point)."""
    blocked = _join(task, upstream)
    if blocked is not None:
        return blocked
    context = build_activation(workflow_input, workflow_id, upstream, task.refs)
    if task.when is not None:
        try:
            verdict = task.when.evaluate(context)
        except ExpressionError as error:
            return Fail("ExpressionError", f"when: {error}")
        if not isinstance(verdict, bool):
            kind = type(verdict).__name__
            return Fail("ExpressionError", f"when: {task.when.source!r} gave {kind}, not bool")
        if not verdict:
            return Skip(f"when is false: {task.when.source}")
    try:
        return Ready(task.input.render(context))
    except ExpressionError as error:
        return Fail("ExpressionError", f"input: {error}")


def _join(task: CompiledTask, upstream: Mapping[str, Outcome]) -> Readiness | None:
    """Abort, Wait or Skip from the upstream states alone; None when the task may be evaluated."""
    waiting = False
    for dep in task.observes:
        outcome = upstream.get(dep)
        if outcome is not None and outcome[0] == TaskStatus.FAILED:
            return Abort(dep)
        waiting = waiting or outcome is None or outcome[0] not in RESOLVED
    if waiting:
        return WAIT
    if task.spec.skip_if_upstream_skipped:
        skipped = [dep for dep in task.spec.depends_on if upstream[dep][0] == TaskStatus.SKIPPED]
        if skipped:
            return Skip(f"upstream skipped: {', '.join(skipped)}")
    return None


def render_input(
    definition: Definition,
    task_id: str,
    upstream: Mapping[str, Outcome],
    workflow_input: Any,
    workflow_id: str = "",
) -> Any:
    """The task's rendered input (raises ``ExpressionError``)."""
    template = definition.plan.tasks[task_id].input
    if template.is_constant:
        return template.constant
    return template.render(build_activation(workflow_input, workflow_id, upstream, template.tasks))


def render_compensation_input(
    definition: Definition,
    task_id: str,
    outcomes: Mapping[str, Outcome],
    workflow_input: Any,
    workflow_id: str = "",
) -> Any:
    """The input of the task's compensation; it may use the task's own output (raises ``ExpressionError``)."""
    template = definition.plan.tasks[task_id].compensate_input
    if template is None:
        raise ValueError(f"task '{task_id}' has no compensation")
    if template.is_constant:
        return template.constant
    return template.render(build_activation(workflow_input, workflow_id, outcomes, template.tasks))


def render_output(
    definition: Definition,
    outcomes: Mapping[str, Outcome],
    workflow_input: Any,
    workflow_id: str = "",
) -> Any:
    """The workflow output: the ``output`` mapping, or ``{sink task id: its output}`` (raises ``ExpressionError``)."""
    plan = definition.plan
    if plan.output is None:
        return {sink: outcomes[sink][1] if sink in outcomes else None for sink in plan.sinks}
    if plan.output.is_constant:
        return plan.output.constant
    return plan.output.render(
        build_activation(workflow_input, workflow_id, outcomes, plan.output.tasks)
    )


def compensation_order(definition: Definition, completed: Sequence[str]) -> list[str]:
    """Tasks to compensate, given Succeeded task ids in completion order: reverse order, those with ``compensate``."""
    tasks = definition.plan.tasks
    return [
        tid
        for tid in reversed(completed)
        if tid in tasks and tasks[tid].spec.compensate is not None
    ]


def to_compensate(
    definition: Definition, failed_task_id: str, completed: Sequence[str]
) -> list[str]:
    """When ``failed_task_id`` fails under ``on_failure: compensate``, the tasks that must undo their work, in order.

    Every Succeeded task with a ``compensate`` (not only the failed task's
    upstream: parallel branches had side effects too), most recently
    completed first — the same rule the state machine applies. Empty when the
    workflow's policy is ``fail``.
    """
    if definition.on_failure != "compensate":
        return []
    return compensation_order(definition, [tid for tid in completed if tid != failed_task_id])
