"""One test (or a few) per rule of the state machine (issue 11)."""

from __future__ import annotations

import json

import pytest

from podium.workflow import machine
from podium.workflow.machine import (
    TERMINAL,
    CancelRequested,
    Event,
    RunTask,
    Started,
    TaskStatus,
    TaskSucceeded,
    TimerFired,
    WorkflowState,
    WorkflowStatus,
    command_adapter,
    decide,
    event_adapter,
    in_flight,
)

from .helpers import Run, compensations, definition, finished, run_task, runs, task, timers

S = TaskStatus
W = WorkflowStatus


def diamond(**settings: object) -> Run:
    d = definition(task("a"), task("b", "a"), task("c", "a"), task("d", "b", "c"), **settings)
    return Run(d)


# -- start, fan-out, fan-in ---------------------------------------------------


def test_start_runs_every_root_at_once_with_deterministic_ids() -> None:
    d = definition(task("a"), task("b"), task("c", "a", "b"))
    run = Run(d, workflow_id="w-1")
    assert run.st.status is W.RUNNING
    assert runs(run.first) == ["a", "b"]
    a = run_task(run.first, "a")
    assert (a.command_id, a.idempotency_key, a.attempt, a.task_type) == (
        "w-1:a:1",
        "w-1:a",
        1,
        "svc.a",
    )
    assert run.status("c") is S.PENDING
    assert [h.to_state for h in run.st.history] == ["Running", "Running", "Running"]


def test_fan_in_waits_for_every_dependency() -> None:
    run = diamond()
    assert runs(run.ok("a")) == ["b", "c"]
    assert runs(run.ok("b")) == []
    assert run.status("d") is S.PENDING
    assert runs(run.ok("c")) == ["d"]
    done = run.ok("d", {"x": 1})
    assert finished(done)[0].status is W.SUCCEEDED
    assert run.st.status is W.SUCCEEDED
    assert run.st.ended_at == run.now


def test_workflow_timeout_timer_is_scheduled_at_start() -> None:
    run = Run(definition(task("a"), timeout="30s"), workflow_id="w")
    (timer,) = timers(run.first)
    assert (timer.timer_id, timer.due, timer.purpose) == ("w:timeout", 1030.0, "workflow_timeout")


# -- data passing --------------------------------------------------------------


def test_input_mapping_sees_workflow_input_and_upstream_outputs() -> None:
    d = definition(
        task("a", input={"n": "${ workflow.input.n }", "fixed": 2}),
        task(
            "b",
            "a",
            input={
                "sum": "${ tasks.a.output.v + workflow.input.n }",
                "label": "v=${ tasks.a.output.v }",
            },
        ),
    )
    run = Run(d, {"n": 3})
    assert run_task(run.first, "a").input == {"n": 3, "fixed": 2}
    b = run_task(run.ok("a", {"v": 10}), "b")
    assert b.input == {"sum": 13, "label": "v=10"}


def test_default_output_maps_each_sink_to_its_output() -> None:
    run = diamond()
    run.ok("a")
    run.ok("b", 1)
    run.ok("c", 2)
    (done,) = finished(run.ok("d", {"r": True}))
    assert done.output == {"d": {"r": True}}
    assert run.st.output == {"d": {"r": True}}


def test_output_mapping_is_rendered_with_the_same_engine() -> None:
    d = definition(
        task("a"),
        task("b", "a"),
        output={"total": "${ tasks.a.output.x + tasks.b.output.x }", "v": 1},
    )
    run = Run(d)
    run.ok("a", {"x": 1})
    (done,) = finished(run.ok("b", {"x": 2}))
    assert done.output == {"total": 3, "v": 1}


def test_output_mapping_error_fails_the_workflow() -> None:
    run = Run(definition(task("a"), output={"x": "${ tasks.a.output.missing }"}))
    (done,) = finished(run.ok("a", {}))
    assert done.status is W.FAILED
    assert done.error is not None and done.error["type"] == "ExpressionError"


# -- skips -----------------------------------------------------------------------


def test_when_false_skips_and_dependents_see_skipped_state_and_null_output() -> None:
    d = definition(
        task("a", when="workflow.input.go"),
        task("b", "a", input={"state": "${ tasks.a.state }", "out": "${ tasks.a.output }"}),
    )
    run = Run(d, {"go": False})
    assert run.status("a") is S.SKIPPED
    assert run_task(run.first, "b").input == {"state": "Skipped", "out": None}
    entry = next(h for h in run.st.history if h.task_id == "a")
    assert (entry.from_state, entry.to_state) == ("Pending", "Skipped")
    assert entry.reason is not None and "when is false" in entry.reason


def test_when_true_runs() -> None:
    run = Run(definition(task("a", when="workflow.input.n > 1")), {"n": 2})
    assert runs(run.first) == ["a"]


def test_skip_if_upstream_skipped_cascades_to_the_end() -> None:
    d = definition(
        task("a", when="false"),
        task("b", "a", skip_if_upstream_skipped=True),
        task("c", "b", skip_if_upstream_skipped=True),
    )
    run = Run(d)
    assert [run.status(t) for t in "abc"] == [S.SKIPPED] * 3
    (done,) = finished(run.first)
    assert done.status is W.SUCCEEDED
    assert done.output == {"c": None}


def test_a_workflow_of_only_skips_succeeds_at_once() -> None:
    run = Run(definition(task("a", when="false")))
    assert finished(run.first)[0].status is W.SUCCEEDED


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"when": "workflow.input.missing > 1"}, "when"),
        ({"when": "'not a bool'"}, "when"),
        ({"input": {"x": "${ workflow.input.a / workflow.input.b }"}}, "input"),
    ],
)
def test_expression_errors_fail_the_task_not_retryable(
    fields: dict[str, object], where: str
) -> None:
    d = definition(task("a", retry={"max_attempts": 3}, **fields))
    run = Run(d, {"a": 1, "b": 0})
    assert run.status("a") is S.FAILED
    error = run.st.tasks["a"].error
    assert error is not None
    assert error["type"] == "ExpressionError" and error["retryable"] is False
    assert error["message"].startswith(where)
    (done,) = finished(run.first)
    assert done.status is W.FAILED and done.error is not None and done.error["task_id"] == "a"


# -- retries ---------------------------------------------------------------------


def test_retryable_failure_retries_after_backoff_then_fails_when_exhausted() -> None:
    d = definition(
        task("a", retry={"max_attempts": 3, "backoff": "1s", "multiplier": 2, "max_backoff": "10s"})
    )
    run = Run(d, workflow_id="w")
    commands = run.fail("a", at=1001.0)
    assert run.status("a") is S.RETRYING
    (timer,) = timers(commands)
    assert (timer.timer_id, timer.due, timer.purpose, timer.attempt) == (
        "w:a:retry:2",
        1002.0,
        "retry",
        2,
    )
    again = run_task(run.fire("w:a:retry:2", at=1002.0), "a")
    assert (again.command_id, again.attempt, again.idempotency_key) == ("w:a:2", 2, "w:a")
    assert runs(run.fail("a", at=1003.0)) == []
    assert timers(run.log)[-1].due == 1003.0 + 2.0
    run.fire("w:a:retry:3", at=1005.0)
    done = run.fail("a", at=1006.0)
    assert run.status("a") is S.FAILED
    assert run.st.tasks["a"].attempts == 3
    assert finished(done)[0].status is W.FAILED


def test_non_retryable_failure_fails_at_once() -> None:
    run = Run(definition(task("a", retry={"max_attempts": 5})))
    done = run.fail("a", retryable=False)
    assert run.status("a") is S.FAILED
    assert finished(done)[0].error == {
        "type": "Boom",
        "message": "boom",
        "retryable": False,
        "task_id": "a",
    }


def test_backoff_is_capped() -> None:
    policy = (
        definition(
            task("a", retry={"max_attempts": 9, "backoff": 1, "multiplier": 10, "max_backoff": 50})
        )
        .task("a")
        .retry
    )
    assert [policy.delay(n, "s") for n in (1, 2, 3, 4)] == [1, 10, 50, 50]


def test_jitter_is_deterministic_per_seed_and_bounded() -> None:
    d = definition(
        task("a", retry={"max_attempts": 2, "backoff": 10, "jitter": 0.5, "max_backoff": 100})
    )

    def due(seed: int) -> float:
        run = Run(d, seed=seed)
        return timers(run.fail("a"))[0].due - run.now

    assert due(1) == due(1)
    delays = {due(seed) for seed in range(20)}
    assert len(delays) > 10
    assert all(5 <= delay <= 15 for delay in delays)


# -- timeouts, late and duplicate outcomes ---------------------------------------------


def test_attempt_timeout_fails_the_attempt_retryably_and_its_late_outcome_is_ignored() -> None:
    d = definition(
        task("a", timeout="5s", retry={"max_attempts": 2, "backoff": "1s"}), task("b", "a")
    )
    run = Run(d, workflow_id="w")
    (timer,) = timers(run.first)
    assert (timer.timer_id, timer.due, timer.purpose, timer.attempt) == (
        "w:a:timeout:1",
        1005.0,
        "attempt_timeout",
        1,
    )
    run.fire("w:a:timeout:1", at=1005.0)
    assert run.status("a") is S.RETRYING
    error = run.st.tasks["a"].error
    assert error is not None and error["type"] == "Timeout" and error["retryable"] is True
    run.fire("w:a:retry:2", at=1006.0)
    before = run.st
    assert run.ok("a", "late", attempt=1) == []
    assert run.st is before
    assert runs(run.ok("a", "fresh", attempt=2)) == ["b"]
    assert run.st.tasks["a"].output == "fresh"


def test_a_workflow_failed_by_a_timeout_carries_the_task_error_retryable_and_all() -> None:
    run = Run(definition(task("a", timeout="2s", retry={"max_attempts": 2})), workflow_id="w")
    run.fire("w:a:timeout:1", at=1002.0)
    run.fire("w:a:retry:2", at=1003.0)
    (done,) = finished(run.fire("w:a:timeout:2", at=1005.0))
    timed_out = {"type": "Timeout", "message": "attempt 2 timed out after 2s", "retryable": True}
    assert run.st.tasks["a"].error == timed_out
    assert done.error == {**timed_out, "task_id": "a"}


def test_timeout_timer_of_a_finished_attempt_is_dropped_and_ignored() -> None:
    run = Run(definition(task("a", timeout=5), task("b", "a")), workflow_id="w")
    run.ok("a")
    assert "w:a:timeout:1" not in run.st.timers
    before = run.st
    assert run.fire("w:a:timeout:1") == []
    assert run.st is before


def test_duplicate_outcomes_are_ignored() -> None:
    run = diamond()
    run.ok("a", 1)
    before = run.st
    assert run.ok("a", 2, attempt=1) == []
    assert run.st is before
    run.fail("b", retryable=False)
    before = run.st
    assert run.fail("b", retryable=False) == []
    assert run.st is before


def test_outcomes_for_unknown_tasks_or_attempts_are_ignored() -> None:
    run = diamond()
    before = run.st
    assert run.send(TaskSucceeded(task_id="nope", attempt=1)) == []
    assert run.ok("a", attempt=2) == []
    assert run.ok("d", attempt=1) == []  # never started
    assert run.st is before


def test_events_without_a_state_are_ignored_and_started_twice_is_ignored() -> None:
    d = definition(task("a"))
    assert decide(d, None, TaskSucceeded(task_id="a", attempt=1), 1.0) == (None, [])
    run = Run(d)
    before = run.st
    assert run.send(Started(workflow_id="wf", input={"other": 1})) == []
    assert run.st is before


# -- failure and compensation -------------------------------------------------------------


def test_fail_policy_fails_the_workflow_once_and_ignores_everything_after() -> None:
    run = diamond()
    run.ok("a")
    done = run.fail("b", retryable=False)
    assert [f.status for f in finished(done)] == [W.FAILED]
    final = run.st
    assert run.ok("c") == []
    assert run.cancel() == []
    assert run.st is final
    assert len(finished(run.log)) == 1
    assert run.status("c") is S.RUNNING  # abandoned, not awaited


def saga() -> Run:
    d = definition(
        task("a", compensate={"type": "undo.a", "input": {"id": "${ tasks.a.output.id }"}}),
        task("b", "a", compensate={"type": "undo.b", "retry": {"max_attempts": 2}}),
        task("c", "a"),  # no compensation
        task("d", "b", "c"),
        on_failure="compensate",
    )
    return Run(d, workflow_id="w")


def test_compensations_run_one_at_a_time_in_reverse_completion_order() -> None:
    run = saga()
    run.ok("a", {"id": "A1"})
    run.ok("b")
    run.ok("c")
    started = run.fail("d", retryable=False)
    assert run.st.status is W.COMPENSATING
    assert compensations(started) == ["b"]
    comp = run_task(started, "b")
    assert (comp.command_id, comp.idempotency_key, comp.task_type, comp.compensation) == (
        "w:b:compensate:1",
        "w:b:compensate",
        "undo.b",
        True,
    )
    nxt = run.ok("b", compensation=True)
    assert compensations(nxt) == ["a"]
    assert run_task(nxt, "a").input == {"id": "A1"}
    (done,) = finished(run.ok("a", compensation=True))
    assert done.status is W.COMPENSATED
    assert done.error == {"type": "Boom", "message": "boom", "retryable": False, "task_id": "d"}
    comp_entries = [(h.task_id, h.to_state) for h in run.st.history if h.compensation]
    assert comp_entries == [
        ("b", "Running"),
        ("b", "Succeeded"),
        ("a", "Running"),
        ("a", "Succeeded"),
    ]


def test_completion_order_not_definition_order_drives_compensation() -> None:
    d = definition(
        task("x", compensate={"type": "undo.x"}),
        task("y", compensate={"type": "undo.y"}),
        task("z", "x", "y"),
        on_failure="compensate",
    )
    run = Run(d)
    run.ok("y")
    run.ok("x")
    assert compensations(run.fail("z", retryable=False)) == ["x"]
    assert compensations(run.ok("x", compensation=True)) == ["y"]


def test_a_saga_waits_for_running_attempts_and_undoes_a_late_success() -> None:
    d = definition(
        task("a", compensate={"type": "undo.a"}),
        task("slow", compensate={"type": "undo.slow"}),  # runs beside a's failing sibling
        task("b", "a"),
        on_failure="compensate",
    )
    run = Run(d, workflow_id="w")
    run.ok("a")
    assert run.fail("b", retryable=False) == []  # slow is still running: nothing undone yet
    assert run.st.status is W.COMPENSATING
    assert [c.task_id for c in machine.in_flight(d, run.st)] == ["slow"]
    # slow succeeds after the failure: it is undone first (most recent), then a
    assert compensations(run.ok("slow")) == ["slow"]
    assert compensations(run.ok("slow", compensation=True)) == ["a"]
    (done,) = finished(run.ok("a", compensation=True))
    assert done.status is W.COMPENSATED
    assert sorted(run.st.compensations) == ["a", "slow"]


def test_a_running_attempt_that_fails_during_the_saga_is_not_retried() -> None:
    run = saga()
    run.ok("a", {"id": 1})
    run.fail("b", retryable=False)  # c is still running
    assert run.st.status is W.COMPENSATING and run.status("c") is S.RUNNING
    started = run.fail("c", retryable=True)  # would be retried while Running
    assert run.status("c") is S.FAILED and not timers(started)
    assert compensations(started) == ["a"]


def test_a_running_attempt_that_times_out_during_the_saga_unblocks_it() -> None:
    d = definition(
        task("a", compensate={"type": "undo.a"}),
        task("slow", timeout=5),
        task("b", "a"),
        on_failure="compensate",
    )
    run = Run(d, workflow_id="w")
    run.ok("a")
    run.fail("b", retryable=False)
    (timeout,) = [t for t in run.st.timers if ":slow:timeout:" in t]
    assert compensations(run.fire(timeout, at=run.st.timers[timeout].due)) == ["a"]
    assert run.status("slow") is S.FAILED


def test_a_compensation_reported_before_its_turn_is_taken_as_done() -> None:
    """Choreography undoes independent branches in parallel; the tracker accepts any order."""
    run = saga()
    run.ok("a", {"id": "A1"})
    run.ok("b")
    run.ok("c")
    run.fail("d", retryable=False)
    assert run.st.compensation_queue == ("b", "a")
    early = run.ok("a", attempt=1, compensation=True)  # a's undo reported while b's runs
    assert early == [] and run.st.compensation_queue == ("b",)
    assert run.st.compensations["a"].status is S.SUCCEEDED
    (done,) = finished(run.ok("b", compensation=True))
    assert done.status is W.COMPENSATED
    assert run.ok("a", attempt=1, compensation=True) == []  # a duplicate changes nothing


def test_compensation_is_retried_then_failure_fails_the_workflow() -> None:
    run = saga()
    run.ok("a", {"id": 1})
    run.ok("b")
    run.fail("c", retryable=False)
    assert compensations(run.log) == ["b"]
    (timer,) = timers(run.fail("b", compensation=True))
    assert timer.compensation and timer.purpose == "retry"
    assert compensations(run.fire(timer.timer_id)) == ["b"]
    assert run.st.compensations["b"].attempts == 2
    (done,) = finished(run.fail("b", compensation=True))
    assert done.status is W.FAILED
    assert done.error is not None and done.error["type"] == "CompensationFailed"
    assert done.error["cause"] == {
        "type": "Boom",
        "message": "boom",
        "retryable": False,
        "task_id": "c",
    }


def test_compensation_outcomes_are_ignored_while_running() -> None:
    run = saga()
    before = run.st
    assert run.ok("a", attempt=1, compensation=True) == []
    assert run.st is before


def test_compensate_with_nothing_to_undo_ends_compensated() -> None:
    run = saga()
    done = run.fail("a", retryable=False)
    assert finished(done)[0].status is W.COMPENSATED
    assert [h.to_state for h in run.st.history if h.task_id is None] == [
        "Running",
        "Compensating",
        "Compensated",
    ]


def test_compensation_attempt_timeout() -> None:
    d = definition(
        task("a", compensate={"type": "undo", "timeout": "2s"}),
        task("b", "a"),
        on_failure="compensate",
    )
    run = Run(d, workflow_id="w")
    run.ok("a")
    started = run.fail("b", retryable=False)
    (timer,) = timers(started)
    assert timer.timer_id == "w:a:compensate:timeout:1"
    (done,) = finished(run.fire(timer.timer_id))
    assert done.status is W.FAILED


# -- workflow timeout and cancel ---------------------------------------------------------


def test_workflow_timeout_ends_timed_out() -> None:
    run = Run(definition(task("a"), task("b", "a"), timeout=10), workflow_id="w")
    run.ok("a")
    (done,) = finished(run.fire("w:timeout", at=1010.0))
    assert done.status is W.TIMED_OUT
    assert run.st.timers == {}
    assert run.status("b") is S.RUNNING
    assert run.ok("b") == []


def test_workflow_timeout_also_bounds_compensation() -> None:
    run = Run(
        definition(
            task("a", compensate={"type": "undo"}),
            task("b", "a"),
            timeout=10,
            on_failure="compensate",
        ),
        workflow_id="w",
    )
    run.ok("a")
    run.fail("b", retryable=False)
    assert finished(run.fire("w:timeout"))[0].status is W.TIMED_OUT


def test_cancel_with_the_fail_policy_ends_cancelled_at_once() -> None:
    run = diamond()
    run.ok("a")
    (done,) = finished(run.send(CancelRequested(reason="user asked")))
    assert done.status is W.CANCELLED
    assert done.error == {"type": "Cancelled", "message": "user asked", "task_id": None}
    assert run.st.timers == {} and run.st.status in TERMINAL
    assert run.ok("b") == [] and run.status("b") is S.RUNNING  # abandoned, not awaited


def test_cancel_of_a_saga_awaits_running_attempts_undoes_and_ends_cancelled() -> None:
    run = saga()
    run.ok("a", {"id": 1})  # b and c are running
    assert run.cancel("stop") == []  # nothing undone while they run
    assert run.st.status is W.COMPENSATING
    assert run.ok("b") == []  # a late success: undone too, once c has ended
    started = run.fail("c", retryable=True)  # no retry once cancelled
    assert run.status("c") is S.FAILED and not timers(started)
    assert runs(started) == [] and compensations(started) == ["b"]
    assert compensations(run.ok("b", compensation=True)) == ["a"]
    (done,) = finished(run.ok("a", compensation=True))
    assert done.status is W.CANCELLED
    assert done.error == {"type": "Cancelled", "message": "stop", "task_id": None}
    assert run.status("d") is S.PENDING  # never started


def test_cancel_drops_a_pending_retry() -> None:
    run = Run(definition(task("a", retry={"max_attempts": 3}), on_failure="compensate"))
    run.fail("a")
    assert run.status("a") is S.RETRYING
    (done,) = finished(run.cancel())
    assert done.status is W.CANCELLED  # nothing to undo, no retry awaited
    assert run.st.timers == {}


def test_cancel_while_compensating_changes_nothing() -> None:
    run = saga()
    run.ok("a", {"id": 1})
    run.ok("b")
    run.ok("c")
    run.fail("d", retryable=False)
    before = run.st
    assert run.cancel() == [] and run.st is before
    run.ok("b", compensation=True)
    (done,) = finished(run.ok("a", compensation=True))
    assert done.status is W.COMPENSATED


def test_a_failed_compensation_after_a_cancel_fails_the_workflow() -> None:
    run = saga()
    run.ok("a", {"id": 1})
    run.ok("b")
    run.ok("c")
    run.cancel()
    assert compensations(run.fail("d")) == ["b"]  # d was running: awaited, not retried
    run.fail("b", compensation=True, retryable=False)
    (done,) = finished(run.log)
    assert done.status is W.FAILED and done.error is not None
    assert done.error["type"] == "CompensationFailed"
    assert done.error["cause"]["type"] == "Cancelled"


def test_a_task_error_named_cancelled_still_compensates() -> None:
    run = saga()
    run.ok("a", {"id": 1})
    run.fail("b", retryable=False, error_type="Cancelled")
    run.fail("c", retryable=False)
    (done,) = finished(run.ok("a", compensation=True))
    assert done.status is W.COMPENSATED


def test_invalid_input_fails_at_start() -> None:
    d = definition(task("a"), input_schema={"type": "object", "required": ["sku"]})
    run = Run(d, {})
    (done,) = finished(run.first)
    assert done.status is W.FAILED
    assert (
        done.error is not None
        and done.error["type"] == "InputError"
        and "sku" in done.error["message"]
    )
    assert runs(run.first) == []


# -- observe-only (tracker) ---------------------------------------------------------


def test_tracker_accepts_the_next_attempts_outcome_while_retrying() -> None:
    d = definition(task("a", retry={"max_attempts": 3}), task("b", "a"))
    run = Run(d)
    run.fail("a", attempt=1)  # the service reports attempt 1 failed and retries by itself
    assert run.status("a") is S.RETRYING
    commands = run.ok("a", {"v": 1}, attempt=2)  # no retry timer fired here
    assert runs(commands) == ["b"]
    assert run.st.tasks["a"].attempts == 2
    states = [
        (h.from_state, h.to_state, h.attempt, h.reason) for h in run.st.history if h.task_id == "a"
    ]
    assert states == [
        ("Pending", "Running", 1, None),
        ("Running", "Retrying", 1, None),
        ("Retrying", "Running", 2, "observed"),
        ("Running", "Succeeded", 2, None),
    ]
    assert not any(t.purpose == "retry" for t in run.st.timers.values())


def test_tracker_reaches_failed_when_the_service_exhausts_its_retries() -> None:
    d = definition(task("a", retry={"max_attempts": 2}))
    run = Run(d)
    run.fail("a", attempt=1)
    (done,) = finished(run.fail("a", attempt=2))
    assert done.status is W.FAILED


def test_outcome_two_attempts_ahead_is_ignored() -> None:
    run = Run(definition(task("a", retry={"max_attempts": 5})))
    run.fail("a", attempt=1)
    before = run.st
    assert run.ok("a", attempt=3) == []
    assert run.st is before


# -- serialisation -------------------------------------------------------------------


def test_state_events_and_commands_round_trip_through_json() -> None:
    run = saga()
    run.ok("a", {"id": "x"})
    run.ok("b")
    run.fail("c", retryable=False)
    run.fail("b", compensation=True)
    assert run.st.compensations["b"].status is S.RETRYING and run.st.timers
    text = json.dumps(run.st.model_dump(mode="json"))
    assert WorkflowState.model_validate(json.loads(text)) == run.st
    assert WorkflowState.model_validate_json(run.st.model_dump_json()) == run.st
    for command in run.log:
        data = json.loads(json.dumps(command_adapter.dump_python(command, mode="json")))
        assert command_adapter.validate_python(data) == command
    events: list[Event] = [
        Started(workflow_id="w", input={"a": 1}, seed=3),
        TimerFired(timer_id="t"),
        CancelRequested(),
    ]
    for event in events:
        data = event_adapter.dump_python(event, mode="json")
        assert event_adapter.validate_python(data) == event


def test_commands_are_frozen_and_strict() -> None:
    run = diamond()
    command = run.first[0]
    assert isinstance(command, RunTask)
    with pytest.raises(ValueError):
        command.attempt = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        event_adapter.validate_python({"kind": "started", "workflow_id": "w", "bogus": 1})


def test_state_is_not_mutated_by_decide() -> None:
    run = diamond()
    before = run.st.model_dump()
    old = run.st
    run.ok("a")
    assert old.model_dump() == before


def test_in_flight_reissues_the_commands_a_restored_state_waits_for() -> None:
    run = saga()
    assert in_flight(run.definition, run.st) == run.first
    run.ok("a", {"id": "A"})
    waiting = in_flight(run.definition, run.st)
    assert sorted(c.command_id for c in waiting) == ["w:b:1", "w:c:1"]
    assert waiting == [c for c in run.log if isinstance(c, RunTask) and c.task_id in "bc"]
    run.ok("b")
    run.fail("c", retryable=False)
    (compensation,) = in_flight(run.definition, run.st)
    assert compensation == run.log[-1] and compensation.compensation
    run.ok("b", compensation=True)
    run.ok("a", compensation=True)
    assert in_flight(run.definition, run.st) == []
