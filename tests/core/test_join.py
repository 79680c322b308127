"""The choreography join rule (`podium.workflow.join`): one participant's view of a workflow."""

from __future__ import annotations

from podium.workflow import join as rules
from podium.workflow.ids import seed_of
from podium.workflow.join import Report, Retry, Run
from podium.workflow.machine import Started, Step, TaskFailed, TaskSucceeded, decide
from podium.workflow.states import TaskStatus as S

from .helpers import definition, task

SAGA = definition(
    task("a", compensate={"type": "undo.a"}),
    task("b", "a", compensate={"type": "undo.b"}),
    task("c", "b", retry={"max_attempts": 3, "backoff": 1, "jitter": 0.5}),
    on_failure="compensate",
)


def participant(*types: str) -> rules.Join:
    return rules.new_join(SAGA, "w", set(types))


def test_a_ready_task_runs_and_its_success_moves_the_join_on() -> None:
    join = participant("svc.a", "svc.b")
    assert rules.on_trigger(SAGA, join, {}) == [Run("a", 1, {})]
    run = Run("a", 1, {})
    assert rules.on_result(SAGA, join, run, S.SUCCEEDED, {"x": 1}, retryable=True, now=0) == [
        Run("b", 1, {})
    ]
    assert not rules.settled(SAGA, join)  # b runs


def test_a_task_ready_after_the_failure_is_declined_and_reported() -> None:
    join = participant("svc.b")
    rules.on_trigger(SAGA, join, {})
    rules.on_observed(SAGA, join, Step("c"), S.FAILED, None, attempt=3, retryable=False)
    (report,) = rules.on_observed(SAGA, join, Step("a"), S.SUCCEEDED, {}, attempt=1)
    assert report == Report("b", S.FAILED, "not started: the workflow failed", "NotStarted")
    assert join.tasks["b"].status == S.FAILED and rules.settled(SAGA, join)


def test_a_task_behind_a_failure_is_reported_so_that_its_dependents_settle() -> None:
    failing = definition(task("a"), task("b", "a"), task("c", "b"))
    join = rules.new_join(failing, "w", {"svc.b"})
    rules.on_trigger(failing, join, {})
    (report,) = rules.on_observed(
        failing, join, Step("a"), S.FAILED, None, attempt=1, retryable=False
    )
    assert (report.task_id, report.error_type) == ("b", "UpstreamFailed")
    downstream = rules.new_join(failing, "w", {"svc.c"})
    rules.on_trigger(failing, downstream, {})
    (cascade,) = rules.on_observed(failing, downstream, Step("b"), S.FAILED, None, attempt=1)
    assert cascade.error_type == "UpstreamFailed" and rules.settled(failing, downstream)


def test_a_retry_due_after_the_failure_is_not_run_but_reported() -> None:
    join = participant("svc.c")
    rules.on_trigger(SAGA, join, {})
    rules.on_observed(SAGA, join, Step("a"), S.SUCCEEDED, {}, attempt=1)
    (run,) = rules.on_observed(SAGA, join, Step("b"), S.SUCCEEDED, {}, attempt=1)
    (retry,) = rules.on_result(SAGA, join, run, S.FAILED, None, retryable=True, now=10.0)
    assert isinstance(retry, Retry) and join.tasks["c"].status == S.RETRYING
    join.failed = True  # another branch failed for good meanwhile
    (report,) = rules.on_retry_due(join, Step("c"))
    assert (report.error_type, report.attempt) == ("NotRetried", 2)
    assert rules.settled(SAGA, join)


def test_both_modes_back_off_the_same_for_one_workflow() -> None:
    join = participant("svc.c")
    rules.on_trigger(SAGA, join, {})
    rules.on_observed(SAGA, join, Step("a"), S.SUCCEEDED, {}, attempt=1)
    (run,) = rules.on_observed(SAGA, join, Step("b"), S.SUCCEEDED, {}, attempt=1)
    (retry,) = rules.on_result(SAGA, join, run, S.FAILED, None, retryable=True, now=10.0)
    state, _ = decide(SAGA, None, Started(workflow_id="w", seed=seed_of("w")), 0.0)
    state, _ = decide(SAGA, state, TaskSucceeded(task_id="a", attempt=1), 0.0)
    state, _ = decide(SAGA, state, TaskSucceeded(task_id="b", attempt=1), 0.0)
    failed = TaskFailed(task_id="c", attempt=1, error_type="E", message="m", retryable=True)
    state, _ = decide(SAGA, state, failed, 10.0)
    (timer,) = [t for t in state.timers.values() if t.purpose == "retry"]
    assert timer.due == retry.due  # same jitter, from the same seed and salt


def test_undos_run_in_reverse_dependency_order_and_then_the_join_settles() -> None:
    join = participant("undo.a", "undo.b")
    rules.on_trigger(SAGA, join, {})
    rules.on_observed(SAGA, join, Step("a"), S.SUCCEEDED, {}, attempt=1)
    rules.on_observed(SAGA, join, Step("b"), S.SUCCEEDED, {}, attempt=1)
    assert not rules.settled(SAGA, join)  # c may still fail and call for the undos
    (undo_b,) = rules.on_observed(SAGA, join, Step("c"), S.FAILED, None, attempt=3, retryable=False)
    assert undo_b == Run("b", 1, {}, compensation=True)
    (undo_a,) = rules.on_result(SAGA, join, undo_b, S.SUCCEEDED, {}, retryable=True, now=1)
    assert undo_a.task_id == "a" and undo_a.compensation
    rules.on_result(SAGA, join, undo_a, S.SUCCEEDED, {}, retryable=True, now=2)
    assert rules.settled(SAGA, join)


def test_an_undo_above_a_failed_compensation_is_not_awaited() -> None:
    join = participant("undo.a")
    rules.on_trigger(SAGA, join, {})
    rules.on_observed(SAGA, join, Step("a"), S.SUCCEEDED, {}, attempt=1)
    rules.on_observed(SAGA, join, Step("b"), S.SUCCEEDED, {}, attempt=1)
    rules.on_observed(SAGA, join, Step("c"), S.FAILED, None, attempt=3, retryable=False)
    rules.on_observed(SAGA, join, Step("b", compensation=True), S.FAILED, None, attempt=1)
    assert join.compensations["a"].status == S.PENDING  # the saga stopped at b, as orchestrated
    assert rules.settled(SAGA, join)


def test_a_cancel_declines_what_would_start_and_undoes_what_succeeded() -> None:
    join = participant("svc.a", "svc.b", "undo.a")
    rules.on_trigger(SAGA, join, {})
    run = Run("a", 1, {})
    (b,) = rules.on_result(SAGA, join, run, S.SUCCEEDED, {}, retryable=True, now=0)
    # b runs and has not succeeded: nothing below a is left to undo first
    assert rules.on_cancel(SAGA, join) == [Run("a", 1, {}, compensation=True)]
    assert rules.on_cancel(SAGA, join) == []  # the decision again (at-least-once)
    assert rules.on_result(SAGA, join, b, S.FAILED, None, retryable=True, now=1) == []
    assert join.tasks["b"].status == S.FAILED  # not retried


def test_a_cancel_before_a_task_is_ready_declines_it_with_the_reason() -> None:
    join = participant("svc.b")
    rules.on_trigger(SAGA, join, {})
    assert rules.on_cancel(SAGA, join) == []
    (report,) = rules.on_observed(SAGA, join, Step("a"), S.SUCCEEDED, {}, attempt=1)
    assert report == Report("b", S.FAILED, "not started: the workflow was cancelled", "NotStarted")
    assert rules.settled(SAGA, join)
