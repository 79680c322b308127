"""Record the golden histories: ``python tests/golden/record.py``.

Each scenario drives ``decide`` with a scripted event sequence and writes
``tests/golden/<name>.json``: the definition file it uses, every event with
its time, the commands each event produced, and the final state.
``tests/core/test_golden.py`` replays the events and must reproduce the
commands and the state exactly. Re-record only for an intended behaviour
change, and review the diff.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from podium.workflow.loader import load_definition  # noqa: E402
from podium.workflow.machine import (  # noqa: E402
    Command,
    Event,
    RunTask,
    ScheduleTimer,
    Started,
    TaskFailed,
    TaskSucceeded,
    TimerFired,
    WorkflowState,
    command_adapter,
    decide,
    event_adapter,
)

HERE = Path(__file__).resolve().parent


class Recorder:
    def __init__(self, definition_path: str, description: str) -> None:
        self.definition_path = definition_path
        self.definition = load_definition(ROOT / definition_path)
        self.description = description
        self.state: WorkflowState | None = None
        self.steps: list[dict[str, Any]] = []
        self.now = 0.0

    def send(self, event: Event, at: float) -> list[Command]:
        self.now = at
        self.state, commands = decide(self.definition, self.state, event, at)
        self.steps.append(
            {
                "now": at,
                "event": event_adapter.dump_python(event, mode="json"),
                "commands": [command_adapter.dump_python(c, mode="json") for c in commands],
            }
        )
        return commands

    def ok(
        self, task: str, attempt: int, output: Any, at: float, compensation: bool = False
    ) -> list[Command]:
        return self.send(
            TaskSucceeded(task_id=task, attempt=attempt, output=output, compensation=compensation),
            at,
        )

    def fail(
        self, task: str, attempt: int, at: float, *, retryable: bool, compensation: bool = False
    ) -> list[Command]:
        event = TaskFailed(
            task_id=task,
            attempt=attempt,
            error_type="ServiceError",
            message=f"{task} attempt {attempt} failed",
            retryable=retryable,
            compensation=compensation,
        )
        return self.send(event, at)

    def fire_due(self, commands: list[Command], purpose: str) -> list[Command]:
        (timer,) = [c for c in commands if isinstance(c, ScheduleTimer) and c.purpose == purpose]
        return self.send(TimerFired(timer_id=timer.timer_id), timer.due)

    def document(self) -> dict[str, Any]:
        assert self.state is not None
        return {
            "description": self.description,
            "definition": self.definition_path,
            "steps": self.steps,
            "final_state": self.state.model_dump(mode="json"),
        }


ORDER = "examples/order/order.yaml"
ETL = "examples/etl/etl.yaml"
ORDER_INPUT = {"sku": "A-1", "qty": 2, "amount": 19.5}


def order_succeeded() -> Recorder:
    r = Recorder(ORDER, "order: reserve, charge, ship all succeed; output mapping rendered")
    r.send(Started(workflow_id="o-1", input=ORDER_INPUT, seed=42), 0.0)
    r.ok("reserve", 1, {"reservation_id": "r-1"}, 0.1)
    r.ok("charge", 1, {"charge_id": "c-1"}, 0.3)
    r.ok("reserve", 1, {"reservation_id": "r-1"}, 0.35)  # duplicate: ignored
    r.ok("ship", 1, {"tracking": "t-1"}, 0.6)
    return r


def order_compensated() -> Recorder:
    r = Recorder(
        ORDER,
        "order: reserve retried once, ship fails for good, release reported early, refund; late outcomes ignored",
    )
    r.send(Started(workflow_id="o-2", input=ORDER_INPUT, seed=7), 0.0)
    retry = r.fail("reserve", 1, 0.1, retryable=True)
    r.fire_due(retry, "retry")
    r.ok("reserve", 2, {"reservation_id": "r-2"}, 0.5)
    r.ok("charge", 1, {"charge_id": "c-2"}, 0.7)
    refund = r.fail("ship", 1, 0.9, retryable=False)
    assert [c.task_type for c in refund if isinstance(c, RunTask)] == ["payments.refund"]
    r.ok("ship", 1, {"tracking": "late"}, 1.0)  # ignored: the workflow left Running
    # before its turn: taken as done (choreography undoes independent branches in parallel)
    r.ok("reserve", 1, {"released": True}, 1.1, compensation=True)
    r.ok("charge", 1, {"refunded": True}, 1.2, compensation=True)
    r.ok("reserve", 1, {"released": True}, 1.3, compensation=True)  # a duplicate: ignored
    return r


def order_release_retried() -> Recorder:
    r = Recorder(
        ORDER,
        "order: charge fails for good; release fails once, is retried after backoff, then succeeds",
    )
    r.send(Started(workflow_id="o-3", input=ORDER_INPUT, seed=1), 0.0)
    r.ok("reserve", 1, {"reservation_id": "r-3"}, 0.1)
    r.fail("charge", 1, 0.2, retryable=False)
    retry = r.fail("reserve", 1, 0.3, retryable=True, compensation=True)
    r.fire_due(retry, "retry")
    r.ok("reserve", 2, {"released": True}, 1.0, compensation=True)
    return r


def order_timed_out() -> Recorder:
    r = Recorder(
        ORDER,
        "order: reserve attempt 1 times out and is retried; its late outcome is ignored; workflow times out",
    )
    first = r.send(Started(workflow_id="o-4", input=ORDER_INPUT, seed=3), 0.0)
    retry = r.fire_due(first, "attempt_timeout")
    second = r.fire_due(retry, "retry")
    r.ok("reserve", 1, {"reservation_id": "too-late"}, 5.3)
    r.fire_due(first, "workflow_timeout")
    assert second
    return r


def etl_skip_and_retry() -> Recorder:
    r = Recorder(
        ETL, "etl: enrich skipped by when, transform_b retried, join sees the skip, load succeeds"
    )
    r.send(
        Started(workflow_id="e-1", input={"source": "s3://bucket/day", "enrich": False}, seed=9),
        0.0,
    )
    r.ok("extract", 1, {"rows": [1, 2, 3]}, 0.2)
    r.ok("transform_a", 1, {"part": "a"}, 0.3)
    retry = r.fail("transform_b", 1, 0.31, retryable=True)
    r.ok("transform_c", 1, {"part": "c"}, 0.32)
    r.fire_due(retry, "retry")
    r.ok("transform_b", 2, {"part": "b"}, 0.5)
    r.ok("join", 1, {"rows": [3, 2, 1]}, 0.6)
    r.ok("load", 1, {"loaded": 3}, 0.7)
    return r


SCENARIOS: dict[str, Callable[[], Recorder]] = {
    "order_succeeded": order_succeeded,
    "order_compensated": order_compensated,
    "order_release_retried": order_release_retried,
    "order_timed_out": order_timed_out,
    "etl_skip_and_retry": etl_skip_and_retry,
}


def main() -> None:
    for name, scenario in SCENARIOS.items():
        path = HERE / f"{name}.json"
        path.write_text(json.dumps(scenario().document(), indent=1, sort_keys=True) + "\n")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
