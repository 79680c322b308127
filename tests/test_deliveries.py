"""The delivery ledger: what a service's own outcome partitions say about its commands."""

from __future__ import annotations

from podium.events import ErrorInfo, TaskFailed, TaskStarted, TaskSucceeded
from podium.services.deliveries import Ledger

COMMON = {"workflow": "w", "version": 1, "task_id": "t", "task_type": "svc.t"}


def started(attempt: int) -> TaskStarted:
    return TaskStarted(**COMMON, command_id=f"wf:t:{attempt}", attempt=attempt)


def test_a_finished_command_is_answered_not_run_again() -> None:
    ledger = Ledger(max_deliveries=3)
    ledger.observe(started(1))
    done = TaskSucceeded(**COMMON, command_id="wf:t:1", attempt=1, output={"x": 1})
    ledger.observe(done)
    assert ledger.verdict("wf:t:1").outcome == done


def test_a_task_in_flight_at_crashes_runs_alone_then_is_given_up_on() -> None:
    ledger = Ledger(max_deliveries=3)
    assert ledger.verdict("wf:t:1").action == "run"
    ledger.observe(started(1))  # the service died running it
    assert ledger.verdict("wf:t:1").action == "run_alone"
    ledger.observe(started(1))
    ledger.observe(started(2))  # a retry of the same task crashes the same
    verdict = ledger.verdict("wf:t:2")
    assert (verdict.action, verdict.starts) == ("give_up", 3)


def test_an_attempt_that_ended_is_no_crash_to_count() -> None:
    ledger = Ledger(max_deliveries=2)
    ledger.observe(started(1))
    error = ErrorInfo(type="E", message="m", retryable=True)
    ledger.observe(TaskFailed(**COMMON, command_id="wf:t:1", attempt=1, error=error))
    assert ledger.verdict("wf:t:2").action == "run"  # a normal retry runs beside others
