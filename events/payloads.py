"""Payload models, one per CloudEvent type.

Every payload names its workflow definition (name and version) so any
participant — conductor, choreography service, tracker — can find the
definition from the event alone.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class Mode(StrEnum):
    """Which style runs a workflow; every event of it says so."""

    ORCHESTRATION = "orchestration"
    CHOREOGRAPHY = "choreography"


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    #: the CloudEvent `type` this payload travels under
    event_type: ClassVar[str]

    workflow: str
    version: int


class ErrorInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    message: str
    retryable: bool = True


class WorkflowTriggered(Payload):
    """A request to start a workflow (published by `podium trigger`)."""

    event_type: ClassVar[str] = "podium.workflow.triggered"
    input: dict[str, Any]
    mode: Mode = Mode.ORCHESTRATION


class WorkflowCancelRequested(Payload):
    """A request to cancel a workflow (`podium cancel`, the HTTP API), keyed by its id.

    Only the workflow's decider acts on it: the conductor (orchestration) or the
    tracker (choreography), which answers with `WorkflowCancelAccepted` if the
    workflow was still running when the request reached it.
    """

    event_type: ClassVar[str] = "podium.workflow.cancel_requested"
    reason: str = ""


class WorkflowCancelAccepted(Payload):
    """The decider took a cancel: no new attempt from here on; a saga undoes what succeeded.

    The choreography participants follow it (and the tracker, for an orchestrated
    workflow), so every party cancels at the same point of the workflow's story:
    the one its decider saw.
    """

    event_type: ClassVar[str] = "podium.workflow.cancel_accepted"
    reason: str = ""
    mode: Mode


class WorkflowStarted(Payload):
    event_type: ClassVar[str] = "podium.workflow.started"
    input: dict[str, Any]
    mode: Mode


class TaskSummary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    state: str
    attempts: int
    output: Any = None
    error: ErrorInfo | None = None


class _WorkflowEnded(Payload):
    state: str
    mode: Mode
    output: Any = None
    error: ErrorInfo | None = None
    started_at: str | None = None
    ended_at: str | None = None
    tasks: dict[str, TaskSummary] = {}


class WorkflowCompleted(_WorkflowEnded):
    event_type: ClassVar[str] = "podium.workflow.completed"


class WorkflowFailed(_WorkflowEnded):
    """Any terminal state but Succeeded: Failed, Compensated, Cancelled, TimedOut."""

    event_type: ClassVar[str] = "podium.workflow.failed"


class TaskCommand(Payload):
    event_type: ClassVar[str] = "podium.task.command"
    command_id: str
    task_id: str
    task_type: str
    attempt: int
    input: Any = None
    idempotency_key: str
    timeout: float | None = None
    compensation: bool = False
    #: which style runs the workflow; its outcomes carry it on
    mode: Mode = Mode.ORCHESTRATION


class _TaskOutcome(Payload):
    command_id: str
    task_id: str
    task_type: str
    attempt: int
    compensation: bool = False
    mode: Mode = Mode.ORCHESTRATION


class TaskStarted(_TaskOutcome):
    """A service is about to run this attempt's handler (written, and acknowledged, first).

    It travels on the outcome topic, so the service that is the single writer of that
    partition can count, after a crash, how often a command was started without an
    outcome: a command that kills its service every time is given up on, not re-run
    forever (see `services.deliveries`).
    """

    event_type: ClassVar[str] = "podium.task.started"
    #: the attempt's input, where no command on the wire carries it (a choreography
    #: participant runs its own tasks); None from a worker, whose command has it
    input: Any = None


class TaskSucceeded(_TaskOutcome):
    event_type: ClassVar[str] = "podium.task.succeeded"
    output: Any = None


class TaskFailed(_TaskOutcome):
    event_type: ClassVar[str] = "podium.task.failed"
    error: ErrorInfo


class TaskSkipped(_TaskOutcome):
    """Choreography: a task's participant decided it is Skipped, so downstream joins resolve."""

    event_type: ClassVar[str] = "podium.task.skipped"
    reason: str


PAYLOADS: dict[str, type[Payload]] = {
    model.event_type: model
    for model in (
        WorkflowTriggered,
        WorkflowCancelRequested,
        WorkflowCancelAccepted,
        WorkflowStarted,
        WorkflowCompleted,
        WorkflowFailed,
        TaskCommand,
        TaskStarted,
        TaskSucceeded,
        TaskFailed,
        TaskSkipped,
    )
}
