"""Observe-only use: a tracker fed the events of a choreography run reaches the same end.

In choreography each service joins its upstream outcomes with ``readiness``,
retries locally with the task's retry policy and publishes every attempt's
outcome. The tracker runs ``decide`` over those events, discards its
commands and fires no retry timers; it must still agree with the services.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from podium.workflow.choreography import WAIT, Abort, Fail, Ready, Skip, readiness, render_output
from podium.workflow.definition import Definition
from podium.workflow.expressions import Outcome
from podium.workflow.machine import (
    Event,
    Started,
    TaskFailed,
    TaskSucceeded,
    WorkflowState,
    WorkflowStatus,
    decide,
)

from .test_properties import workflows


def choreography(
    d: Definition, workflow_input: dict[str, Any], data: st.DataObject
) -> tuple[list[Event], WorkflowStatus, dict[str, Outcome]]:
    """Simulate the services; return the events they publish, the true end state and the outcomes."""
    events: list[Event] = [Started(workflow_id="w", input=workflow_input, seed=1)]
    outcomes: dict[str, Outcome] = {}
    todo = list(d.order)
    while todo:
        verdicts = {tid: readiness(d, tid, outcomes, workflow_input, "w") for tid in todo}
        if any(isinstance(v, Abort) for v in verdicts.values()):
            return events, WorkflowStatus.FAILED, outcomes
        movable = [tid for tid, v in verdicts.items() if v is not WAIT]
        assert movable, "choreography deadlock"
        tid = data.draw(st.sampled_from(movable))
        todo.remove(tid)
        verdict = verdicts[tid]
        if isinstance(verdict, Skip):
            outcomes[tid] = ("Skipped", None)
            continue
        if isinstance(verdict, Fail):
            return events, WorkflowStatus.FAILED, outcomes
        assert isinstance(verdict, Ready)
        policy = d.task(tid).retry
        for attempt in range(1, policy.max_attempts + 1):
            result = data.draw(st.sampled_from(["ok", "ok", "retryable", "fatal"]))
            if result == "ok":
                events.append(TaskSucceeded(task_id=tid, attempt=attempt, output={"a": attempt}))
                outcomes[tid] = ("Succeeded", {"a": attempt})
                break
            retryable = result == "retryable"
            events.append(
                TaskFailed(
                    task_id=tid, attempt=attempt, error_type="E", message="m", retryable=retryable
                )
            )
            if not retryable or attempt == policy.max_attempts:
                outcomes[tid] = ("Failed", None)
                return events, WorkflowStatus.FAILED, outcomes
    return events, WorkflowStatus.SUCCEEDED, outcomes


@settings(max_examples=100, deadline=None, database=None)
@given(workflows(), st.data())
def test_tracker_agrees_with_the_services(
    wf: tuple[Definition, dict[str, Any]], data: st.DataObject
) -> None:
    d, workflow_input = wf
    d = d.model_copy(update={"on_failure": "fail", "timeout": None})
    events, truth, outcomes = choreography(d, workflow_input, data)
    state: WorkflowState | None = None
    for now, event in enumerate(events):
        state, _ = decide(d, state, event, float(now))  # commands discarded: observe only
    assert state is not None
    assert state.status is truth
    for tid, (status, output) in outcomes.items():
        assert (state.tasks[tid].status, state.tasks[tid].output) == (status, output)
    if truth is WorkflowStatus.SUCCEEDED:
        assert state.output == render_output(d, outcomes, workflow_input, "w")
