"""What the state machine speaks: the events it takes and the commands it returns.

Frozen pydantic models, discriminated by `kind`, so recorded histories (the golden
tests) load back exactly. `podium.workflow.machine` decides; this module only names.

An attempt belongs to a `Step`: a task, or the compensation that undoes it. On the
wire (and in these models) a step is two fields, `task_id` and `compensation`; in
the core it is one value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from podium.workflow.states import TERMINAL, WorkflowStatus

if TYPE_CHECKING:
    from podium.workflow.state import Timer


class Step(NamedTuple):
    """A task, or (``compensation``) the compensation that undoes it: what attempts belong to.

    Its attempts, retry policy, timeout, timers, ids and jitter are its own: a task and
    its compensation are two steps with one task id.
    """

    task_id: str
    compensation: bool = False


class Frozen(BaseModel):
    """Immutable, and strict about unknown fields: what the core passes around."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def _trusted(cls, values: dict[str, Any]) -> Self:
        """A model of `values` without validation, for the hot path of the machine.

        Only for the named constructors (and copies of a validated model): `values`
        holds every field, each one checked by the caller or taken from a validated
        model. (`model_construct` spends most of its time on defaults and aliases,
        which these never need.)
        """
        model = cls.__new__(cls)
        _set(model, "__dict__", values)
        _set(model, "__pydantic_fields_set__", set(values))
        _set(model, "__pydantic_extra__", None)
        _set(model, "__pydantic_private__", None)
        return model


_set = object.__setattr__


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

    @property
    def step(self) -> Step:
        return Step(self.task_id, self.compensation)


class TaskFailed(Frozen):
    kind: Literal["task_failed"] = "task_failed"
    task_id: str
    attempt: int
    error_type: str
    message: str
    retryable: bool = True
    compensation: bool = False

    @property
    def step(self) -> Step:
        return Step(self.task_id, self.compensation)


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

    @classmethod
    def attempt_of(
        cls,
        step: Step,
        attempt: int,
        *,
        workflow_id: str,
        task_type: str,
        input: Any,
        command_id: str,
        idempotency_key: str,
        timeout: float | None,
    ) -> RunTask:
        """The command of one attempt of a step (`machine.run_task` makes its ids)."""
        if attempt < 1:
            raise ValueError(f"{step}: attempt {attempt} (attempts count from 1)")
        return cls._trusted(
            {
                "kind": "run_task",
                "command_id": command_id,
                "workflow_id": workflow_id,
                "task_id": step.task_id,
                "task_type": task_type,
                "attempt": attempt,
                "input": input,
                "idempotency_key": idempotency_key,
                "timeout": timeout,
                "compensation": step.compensation,
            }
        )

    @property
    def step(self) -> Step:
        return Step(self.task_id, self.compensation)


class ScheduleTimer(Frozen):
    kind: Literal["schedule_timer"] = "schedule_timer"
    timer_id: str
    workflow_id: str = ""
    due: float
    purpose: TimerPurpose
    task_id: str | None = None
    attempt: int | None = None
    compensation: bool = False

    @classmethod
    def arming(cls, timer_id: str, workflow_id: str, timer: Timer) -> ScheduleTimer:
        """The command that arms `timer` (checked when it was made: nothing to validate)."""
        return cls._trusted(
            {
                "kind": "schedule_timer",
                "timer_id": timer_id,
                "workflow_id": workflow_id,
                "due": timer.due,
                "purpose": timer.purpose,
                "task_id": timer.task_id,
                "attempt": timer.attempt,
                "compensation": timer.compensation,
            }
        )


class WorkflowFinished(Frozen):
    kind: Literal["workflow_finished"] = "workflow_finished"
    workflow_id: str = ""
    status: WorkflowStatus
    output: Any = None
    error: dict[str, Any] | None = None

    @classmethod
    def of(
        cls, workflow_id: str, status: WorkflowStatus, output: Any, error: dict[str, Any] | None
    ) -> WorkflowFinished:
        """The end of a workflow: `status` is a terminal one."""
        if status not in TERMINAL:
            raise ValueError(f"workflow {workflow_id}: {status} is not an end")
        return cls._trusted(
            {
                "kind": "workflow_finished",
                "workflow_id": workflow_id,
                "status": status,
                "output": output,
                "error": error,
            }
        )


Command = Annotated[RunTask | ScheduleTimer | WorkflowFinished, Field(discriminator="kind")]

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)
command_adapter: TypeAdapter[Command] = TypeAdapter(Command)
