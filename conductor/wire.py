"""Core commands and states turned into wire events, and outcome events into core events.

The conductor and the tracker both announce a workflow's end through
`finished_event`, so the result object users see is built in one place, whatever
the mode; a trigger they refuse is answered with `Refusal.result`, in the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from podium.events import (
    ONESHOT_SOURCE,
    CloudEvent,
    ErrorInfo,
    Mode,
    RawRecord,
    TaskCommand,
    TaskFailed,
    TaskSucceeded,
    TaskSummary,
    WorkflowCancelAccepted,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
    WorkflowTriggered,
    new_event,
    salvage,
)
from podium.workflow import machine
from podium.workflow.machine import WorkflowState
from podium.workflow.states import WorkflowStatus


def command_event(state: WorkflowState, command: machine.RunTask, source: str) -> CloudEvent:
    payload = TaskCommand(
        workflow=state.name,
        version=state.version,
        command_id=command.command_id,
        task_id=command.task_id,
        task_type=command.task_type,
        attempt=command.attempt,
        input=command.input,
        idempotency_key=command.idempotency_key,
        timeout=command.timeout,
        compensation=command.compensation,
    )
    return new_event(
        payload,
        source=source,
        workflow_id=state.workflow_id,
        id=command.command_id,
        task_id=command.task_id,
        attempt=command.attempt,
    )


def started_event(
    trigger: WorkflowTriggered, workflow_id: str, cause: CloudEvent, source: str
) -> CloudEvent:
    payload = WorkflowStarted(
        workflow=trigger.workflow,
        version=trigger.version,
        input=trigger.input,
        mode=trigger.mode,
    )
    return new_event(
        payload,
        source=source,
        workflow_id=workflow_id,
        id=f"{workflow_id}:started",
        causation_id=cause.id,
        correlation_id=cause.correlationid,
        traceparent=cause.traceparent,
    )


def cancel_accepted(state: WorkflowState, mode: Mode, reason: str, source: str) -> CloudEvent:
    """The decider took a cancel of this workflow (one id: a repeat is the same event)."""
    payload = WorkflowCancelAccepted(
        workflow=state.name, version=state.version, reason=reason, mode=mode
    )
    return new_event(
        payload, source=source, workflow_id=state.workflow_id, id=f"{state.workflow_id}:cancel"
    )


def finished_event(state: WorkflowState, source: str, mode: Mode) -> CloudEvent:
    return end_event(state.workflow_id, result_of(state, mode), source)


def end_event(
    workflow_id: str, result: WorkflowCompleted | WorkflowFailed, source: str
) -> CloudEvent:
    """A workflow's end; the same id every time it is announced again."""
    return new_event(result, source=source, workflow_id=workflow_id, id=f"{workflow_id}:finished")


def result_of(state: WorkflowState, mode: Mode) -> WorkflowCompleted | WorkflowFailed:
    """A finished workflow's result: what `podium trigger --wait --json` prints."""
    model = WorkflowCompleted if state.status == WorkflowStatus.SUCCEEDED else WorkflowFailed
    return model(
        workflow=state.name,
        version=state.version,
        state=str(state.status),
        mode=mode,
        output=state.output,
        error=_error(state.error),
        started_at=_iso(state.started_at),
        ended_at=_iso(state.ended_at),
        tasks={
            task_id: TaskSummary(
                state=str(task.status),
                attempts=task.attempts,
                output=task.output,
                error=_error(task.error),
            )
            for task_id, task in state.tasks.items()
        },
    )


@dataclass(frozen=True, slots=True)
class Refusal:
    """A dead-lettered trigger, read as far as it reads: enough to answer its waiter."""

    workflow_id: str
    workflow: str
    version: int
    #: None: the trigger names no mode Podium knows
    mode: Mode | None
    #: published by `podium run`, for that run's own conductor or tracker
    oneshot: bool
    #: the trigger's time: the answer's `ended_at`, the same from whoever answers
    time: str | None

    def result(self, error_type: str, message: str) -> WorkflowFailed:
        """The answer: a Failed end (started never), with the refusal as its error."""
        return WorkflowFailed(
            workflow=self.workflow,
            version=self.version,
            state=str(WorkflowStatus.FAILED),
            mode=self.mode or Mode.ORCHESTRATION,
            error=ErrorInfo(type=error_type, message=message, retryable=False),
            ended_at=self.time,
        )


def refusal_of(raw: RawRecord) -> Refusal | None:
    """What a dead-lettered trigger says; None when it cannot be answered: not a trigger,
    no workflow id, no name and version, or keyed other than by its id (its id's
    partition is another member's, which may be running that workflow)."""
    attrs, data = salvage(raw)
    workflow_id = attrs.get("workflowid")
    if attrs.get("type") != WorkflowTriggered.event_type or not workflow_id:
        return None
    if raw.key != workflow_id.encode() or not isinstance(data, dict):
        return None
    name, version = data.get("workflow"), data.get("version")
    if not isinstance(name, str) or not isinstance(version, int) or isinstance(version, bool):
        return None
    wanted = data.get("mode", Mode.ORCHESTRATION)
    mode = next((m for m in Mode if m == wanted), None)
    try:
        time = datetime.fromisoformat(attrs.get("time", "")).isoformat()
    except ValueError:
        time = None
    oneshot = attrs.get("source") == ONESHOT_SOURCE
    return Refusal(workflow_id, name, version, mode, oneshot, time)


def core_outcome(data: TaskSucceeded | TaskFailed) -> machine.TaskSucceeded | machine.TaskFailed:
    """A task outcome event as the state machine's input."""
    if isinstance(data, TaskSucceeded):
        return machine.TaskSucceeded(
            task_id=data.task_id,
            attempt=data.attempt,
            output=data.output,
            compensation=data.compensation,
        )
    return machine.TaskFailed(
        task_id=data.task_id,
        attempt=data.attempt,
        error_type=data.error.type,
        message=data.error.message,
        retryable=data.error.retryable,
        compensation=data.compensation,
    )


def _error(error: dict[str, Any] | None) -> ErrorInfo | None:
    if not error:
        return None
    return ErrorInfo(
        type=str(error.get("type", "Error")),
        message=str(error.get("message", "")),
        retryable=bool(error.get("retryable", False)),
    )


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()
