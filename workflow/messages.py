"""What the state machine speaks: the events it takes and the commands it returns.

Frozen pydantic models, discriminated by `kind`, so recorded histories (the golden
tests) load back exactly. `podium.workflow.machine` decides; this module only names.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from podium.workflow.states import WorkflowStatus


class Frozen(BaseModel):
    """Immutable, and strict about unknown fields: what the core passes around."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# -- events ------------------------------------------------------------------


class Started(Frozen):
    kind: Literal["started"] = "started"
    workflow_id: str
    input: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0
    #: the tracker: the services act on their own, and every attempt they start ends with a
    #: last word of theirs (an outcome, or a report that they declined it), which it awaits
    observed: bool = False


class TaskSucceeded(Frozen):
    kind: Literal["task_succeeded"] = "task_succeeded"
    task_id: str
    attempt: int
    output: Any = None
    compensation: bool = False


class TaskFailed(Frozen):
    kind: Literal["task_failed"] = "task_failed"
    task_id: str
    attempt: int
    error_type: str
    message: str
    retryable: bool = True
    compensation: bool = False


class TimerFired(Frozen):
    kind: Literal["timer_fired"] = "timer_fired"
    timer_id: str


class CancelRequested(Frozen):
    kind: Literal["cancel_requested"] = "cancel_requested"
    reason: str = ""


Event = Annotated[
    Started | TaskSucceeded | TaskFailed | TimerFired | CancelRequested, Field(discriminator="kind")
]

# -- commands ----------------------------------------------------------------

TimerPurpose = Literal["retry", "attempt_timeout", "workflow_timeout"]


class RunTask(Frozen):
    kind: Literal["run_task"] = "run_task"
    command_id: str
    workflow_id: str = ""
    task_id: str
    task_type: str
    attempt: int
    input: Any = None
    idempotency_key: str
    timeout: float | None = None
    compensation: bool = False


class ScheduleTimer(Frozen):
    kind: Literal["schedule_timer"] = "schedule_timer"
    timer_id: str
    workflow_id: str = ""
    due: float
    purpose: TimerPurpose
    task_id: str | None = None
    attempt: int | None = None
    compensation: bool = False


class WorkflowFinished(Frozen):
    kind: Literal["workflow_finished"] = "workflow_finished"
    workflow_id: str = ""
    status: WorkflowStatus
    output: Any = None
    error: dict[str, Any] | None = None


Command = Annotated[RunTask | ScheduleTimer | WorkflowFinished, Field(discriminator="kind")]

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)
command_adapter: TypeAdapter[Command] = TypeAdapter(Command)
