"""Recorded-looking event streams of whole workflows, with chosen times, for the store's tests.

Each story is the events the conductor (or tracker) and the services publish for
one workflow, built with the same payload models; times are offsets in seconds
from `T0` so the expected rows can be written down.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from podium.events import (
    CloudEvent,
    ErrorInfo,
    Mode,
    TaskCommand,
    TaskFailed,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
    TaskSummary,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
    new_event,
)

T0 = 1_800_000_000.0


def iso(offset: float) -> str:
    return datetime.fromtimestamp(T0 + offset, UTC).isoformat()


class Story:
    def __init__(
        self, workflow_id: str, name: str, mode: Mode, input: dict[str, Any], base: float = 0.0
    ) -> None:
        self.workflow_id = workflow_id
        #: added to every time of the story (workflows that start later)
        self.base = base
        self.name = name
        self.mode = mode
        self.input = input
        self.events: list[CloudEvent] = []
        self._types: dict[tuple[str, bool], str] = {}

    def _event(self, payload: Any, at: float, id: str) -> None:
        time = datetime.fromtimestamp(T0 + self.base + at, UTC)
        event = new_event(payload, source="tests", workflow_id=self.workflow_id, id=id, time=time)
        self.events.append(event)

    def started(self, at: float) -> Story:
        payload = WorkflowStarted(workflow=self.name, version=1, input=self.input, mode=self.mode)
        self._event(payload, at, f"{self.workflow_id}:started")
        return self

    def attempt(
        self,
        task_id: str,
        task_type: str,
        attempt: int,
        times: tuple[float, float, float],
        *,
        input: Any = None,
        output: Any = None,
        error: ErrorInfo | None = None,
        compensation: bool = False,
    ) -> Story:
        """Command (orchestration only), started marker, outcome, at `times`."""
        scheduled, started, ended = times
        command_id = (
            f"{self.workflow_id}:{task_id}:{'compensate:' if compensation else ''}{attempt}"
        )
        common: dict[str, Any] = {
            "workflow": self.name,
            "version": 1,
            "command_id": command_id,
            "task_id": task_id,
            "task_type": task_type,
            "attempt": attempt,
            "compensation": compensation,
            "mode": self.mode,
        }
        if self.mode == Mode.ORCHESTRATION:
            key = f"{self.workflow_id}:{task_id}"
            command = TaskCommand(**common, input=input, idempotency_key=key)
            self._event(command, scheduled, command_id)
            marker = TaskStarted(**common)
        else:
            marker = TaskStarted(**common, input=input)
        self._event(marker, started, f"{command_id}:started")
        outcome: TaskSucceeded | TaskFailed
        if error is None:
            outcome = TaskSucceeded(**common, output=output)
        else:
            outcome = TaskFailed(**common, error=error)
        self._event(outcome, ended, f"{command_id}:{outcome.event_type.rsplit('.', 1)[-1]}")
        return self

    def skipped(self, task_id: str, task_type: str, at: float, reason: str) -> Story:
        """A choreography participant's verdict (the conductor sends none)."""
        payload = TaskSkipped(
            workflow=self.name,
            version=1,
            command_id=f"{self.workflow_id}:{task_id}:1",
            task_id=task_id,
            task_type=task_type,
            attempt=1,
            mode=self.mode,
            reason=reason,
        )
        self._event(payload, at, f"{self.workflow_id}:{task_id}:1:skipped")
        return self

    def ended(
        self,
        state: str,
        started: float,
        ended: float,
        tasks: dict[str, TaskSummary],
        *,
        output: Any = None,
        error: ErrorInfo | None = None,
    ) -> Story:
        model = WorkflowCompleted if state == "Succeeded" else WorkflowFailed
        payload = model(
            workflow=self.name,
            version=1,
            state=state,
            mode=self.mode,
            output=output,
            error=error,
            started_at=iso(self.base + started),
            ended_at=iso(self.base + ended),
            tasks=tasks,
        )
        self._event(payload, ended + 0.001, f"{self.workflow_id}:finished")
        return self

    @property
    def end(self) -> WorkflowCompleted | WorkflowFailed:
        data = self.events[-1].data
        assert isinstance(data, WorkflowCompleted | WorkflowFailed)
        return data


FLAKED = ErrorInfo(type="ConnectionError", message="flaked", retryable=True)
DECLINED = ErrorInfo(type="TaskError", message="card declined", retryable=False)


def order_saga(
    workflow_id: str = "wf-order", mode: Mode = Mode.ORCHESTRATION, base: float = 0.0
) -> Story:
    """examples/order: reserve fails once and is retried; charge fails for good; reserve is undone."""
    story = Story(workflow_id, "order", mode, {"sku": "A-1", "qty": 2, "amount": 5000}, base)
    story.started(0.002)
    story.attempt("reserve", "inventory.reserve", 1, (0.001, 0.003, 0.010), error=FLAKED,
                  input={"sku": "A-1", "qty": 2})  # fmt: skip
    story.attempt("reserve", "inventory.reserve", 2, (0.210, 0.212, 0.220),
                  input={"sku": "A-1", "qty": 2}, output={"reservation_id": "r-1"})  # fmt: skip
    story.attempt("charge", "payments.charge", 1, (0.221, 0.223, 0.230), error=DECLINED,
                  input={"amount": 5000, "order": workflow_id})  # fmt: skip
    story.attempt("reserve", "inventory.release", 1, (0.231, 0.233, 0.240), compensation=True,
                  input={"reservation_id": "r-1"}, output={"released": "r-1"})  # fmt: skip
    return story.ended(
        "Compensated",
        0.0,
        0.241,
        {
            "reserve": TaskSummary(state="Succeeded", attempts=2, output={"reservation_id": "r-1"}),
            "charge": TaskSummary(state="Failed", attempts=1, error=DECLINED),
            "ship": TaskSummary(state="Pending", attempts=0),
        },
        error=DECLINED,
    )


def etl_run(
    workflow_id: str = "wf-etl", mode: Mode = Mode.ORCHESTRATION, base: float = 0.0
) -> Story:
    """examples/etl: enrich is skipped (by the conductor, or by its participant's verdict)."""
    story = Story(workflow_id, "etl", mode, {"source": "s3://x"}, base)
    story.started(0.001)
    story.attempt("extract", "etl.extract", 1, (0.002, 0.003, 0.020), output={"rows": [1]})
    if mode == Mode.CHOREOGRAPHY:
        story.skipped("enrich", "etl.enrich", 0.021, "when is false")
    for offset, kind in enumerate("abc"):
        t = 0.021 + offset * 0.001
        story.attempt(f"transform_{kind}", "etl.transform", 1, (t, t + 0.001, t + 0.010),
                      output={"kind": kind})  # fmt: skip
    story.attempt("join", "etl.join", 1, (0.040, 0.041, 0.050), output={"rows": [1]})
    story.attempt("load", "etl.load", 1, (0.051, 0.052, 0.060), output={"loaded": 1})
    succeeded = TaskSummary(state="Succeeded", attempts=1)
    return story.ended(
        "Succeeded",
        0.0,
        0.061,
        {
            "extract": succeeded.model_copy(update={"output": {"rows": [1]}}),
            "transform_a": succeeded.model_copy(update={"output": {"kind": "a"}}),
            "transform_b": succeeded.model_copy(update={"output": {"kind": "b"}}),
            "transform_c": succeeded.model_copy(update={"output": {"kind": "c"}}),
            "enrich": TaskSummary(state="Skipped", attempts=0),
            "join": succeeded.model_copy(update={"output": {"rows": [1]}}),
            "load": succeeded.model_copy(update={"output": {"loaded": 1}}),
        },
        output={"load": {"loaded": 1}},
    )
