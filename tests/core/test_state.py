"""The state's named constructors: a step's life, checked as each state is made."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from pydantic import BaseModel

from podium.workflow.machine import (
    HistoryEntry,
    IllegalTransition,
    RunTask,
    Step,
    TaskState,
    TaskSucceeded,
    Timer,
    WorkflowFinished,
    WorkflowState,
    WorkflowStatus,
    decide,
)
from podium.workflow.state import PENDING
from podium.workflow.states import TaskStatus as S

from .helpers import Run, definition, task

ERROR = {"type": "Boom", "message": "boom", "retryable": True}
STEP = Step("a")
UNDO = Step("a", compensation=True)


def same_as_validated(model: BaseModel) -> None:
    """Built without validation, yet what pydantic would have built, every field set."""
    assert type(model).model_validate(model.model_dump()) == model
    assert model.model_fields_set == set(type(model).model_fields)


def test_a_task_lives_pending_running_retrying_running_succeeded() -> None:
    first = PENDING.running(1, now=10.0)
    retrying = first.retrying(1, ERROR)
    second = retrying.running(2, now=12.0)
    done = second.succeeded(2, {"x": 1}, now=13.0)
    for state in (first, retrying, second, done):
        same_as_validated(state)
    assert (done.status, done.attempts, done.started_at, done.ended_at) == (
        S.SUCCEEDED,
        2,
        10.0,
        13.0,
    )
    assert second.failed(2, ERROR, now=13.0).status is S.FAILED


def test_ends_without_an_attempt() -> None:
    for state in (
        PENDING.skipped(1.0),
        PENDING.rejected(ERROR, 1.0),
        PENDING.failed_to_start(1, ERROR, 1.0),
        PENDING.succeeded_unseen(2, None, 1.0),
    ):
        same_as_validated(state)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PENDING.running(2, 0.0), "Pending after attempt 0 -> Running (attempt 2)"),
        (lambda: PENDING.succeeded(1, None, 0.0), "Pending after attempt 0 -> Succeeded"),
        (lambda: PENDING.running(1, 0.0).running(2, 0.0), "Running after attempt 1 -> Running"),
        (lambda: PENDING.running(1, 0.0).failed(2, ERROR, 0.0), "-> Failed (attempt 2)"),
        (
            lambda: PENDING.running(1, 0.0).retrying(1, ERROR).running(3, 0.0),
            "-> Running (attempt 3)",
        ),
        (lambda: PENDING.running(1, 0.0).skipped(0.0), "Running after attempt 1 -> Skipped"),
        (lambda: PENDING.skipped(0.0).rejected(ERROR, 0.0), "Skipped after attempt 0 -> Failed"),
        (lambda: PENDING.succeeded_unseen(0, None, 0.0), "-> Succeeded (attempt 0)"),
    ],
)
def test_a_move_the_life_does_not_have_is_refused(make: Callable[[], object], message: str) -> None:
    with pytest.raises(IllegalTransition, match=re.escape(message)):
        make()


def test_timers_history_and_commands() -> None:
    for model in (
        Timer.retry(5.0, UNDO, 2),
        Timer.attempt_timeout(5.0, STEP, 1),
        Timer.workflow_timeout(60.0),
        Timer.retry(5.0, UNDO, 2).command("w:a:compensate:retry:2", "w"),
        HistoryEntry.of_step(1.0, UNDO, S.PENDING, PENDING.running(1, 1.0), input={"i": 1}),
        HistoryEntry.of_workflow(1.0, None, WorkflowStatus.RUNNING, input={}),
        WorkflowFinished.of("w", WorkflowStatus.COMPENSATED, None, {"type": "E"}),
        RunTask.attempt_of(
            UNDO,
            1,
            workflow_id="w",
            task_type="svc.undo",
            input=None,
            command_id="w:a:compensate:1",
            idempotency_key="w:a:compensate",
            timeout=None,
        ),
    ):
        same_as_validated(model)
    assert Timer.retry(5.0, UNDO, 2).step == UNDO
    assert Timer.workflow_timeout(60.0).step is None


def test_what_no_step_has_is_refused() -> None:
    with pytest.raises(ValueError, match="attempt 2 or later"):
        Timer.retry(5.0, STEP, 1)
    with pytest.raises(ValueError, match="count from 1"):
        Timer.attempt_timeout(5.0, STEP, 0)
    with pytest.raises(ValueError, match="not an end"):
        WorkflowFinished.of("w", WorkflowStatus.COMPENSATING, None, None)
    with pytest.raises(ValueError, match="count from 1"):
        RunTask.attempt_of(
            STEP,
            0,
            workflow_id="w",
            task_type="svc.a",
            input=None,
            command_id="w:a:0",
            idempotency_key="w:a",
            timeout=None,
        )


def test_every_state_a_decision_makes_is_what_pydantic_would_make() -> None:
    run = Run(definition(task("a", timeout="5s"), task("b", "a"), timeout="1m"))
    run.fail("a")
    run.fire("wf:a:retry:2", at=1002.0)
    run.ok("a", {"x": 1})
    state = run.st
    assert WorkflowState.model_validate_json(state.model_dump_json()) == state
    same_as_validated(state)


def test_a_state_no_decision_makes_is_refused_naming_the_workflow() -> None:
    """A corrupt state (say, from a changelog): the machine refuses to move it further."""
    saga = definition(
        task("a", compensate={"type": "undo.a"}),
        task("b", compensate={"type": "undo.b"}),
        task("c", "a", "b"),
        on_failure="compensate",
    )
    run = Run(saga)
    run.ok("a")
    run.ok("b")
    run.fail("c")
    assert run.st.compensation_queue == ("b", "a")
    corrupt = run.st.model_copy(
        update={"compensations": {**run.st.compensations, "a": PENDING.running(1, 0.0)}}
    )
    early = TaskSucceeded(task_id="a", attempt=1, compensation=True)
    with pytest.raises(IllegalTransition) as raised:
        decide(saga, corrupt, early, 1001.0)
    assert "workflow wf" in "".join(raised.value.__notes__)


def test_a_task_state_is_still_validated_when_read() -> None:
    with pytest.raises(ValueError):
        TaskState.model_validate({"status": "Sleeping"})
