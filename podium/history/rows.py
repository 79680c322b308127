"""Events in, rows out: what one batch of events writes to the history store.

Pure: no database, no clock. Each event type adds rows to a `Batch` (one
function per type, `singledispatch`); rows with the same key are merged in the
batch by the rule the database applies to rows already stored, so a batch
becomes one upsert per key: each column takes the value of the event of highest
*precedence* that has one (an attempt: command < started marker < the end
event's task summary < its own outcome; a workflow: its start < its end). A
later, weaker event fills only what is still empty.

So the rows are the same whatever order the topics are read in and however
often: reading them all again from the start rewrites the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import singledispatch
from typing import Any

from podium.events import (
    CloudEvent,
    TaskCommand,
    TaskFailed,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)
from podium.events.payloads import Payload

#: precedence of what sets a workflow row
BY_START, BY_END = 1, 2
#: precedence of what sets an attempt row
BY_COMMAND, BY_MARKER, BY_SUMMARY, BY_OUTCOME = 1, 2, 3, 4

WORKFLOW_COLUMNS = (
    "name", "version", "mode", "state", "input", "output", "error",
    "started_at", "ended_at", "result",
)  # fmt: skip
ATTEMPT_COLUMNS = (
    "task_type", "name", "version", "mode", "state", "input", "output", "error",
    "scheduled_at", "started_at", "ended_at", "reason",
)  # fmt: skip

AttemptKey = tuple[str, str, bool, int]  # workflow id, task id, compensation, attempt


@dataclass
class Batch:
    workflows: dict[str, dict[str, Any]] = field(default_factory=dict)
    attempts: dict[AttemptKey, dict[str, Any]] = field(default_factory=dict)
    #: workflows whose end this batch records
    ended: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.workflows) + len(self.attempts)

    def add(self, event: CloudEvent) -> None:
        """The rows one event writes (none for event types the store does not keep)."""
        _rows(event.data, event, self)

    def workflow(self, workflow_id: str, precedence: int, **values: Any) -> None:
        row = self.workflows.get(workflow_id)
        if row is None:
            row = self.workflows[workflow_id] = {c: None for c in WORKFLOW_COLUMNS}
            row.update(workflow_id=workflow_id, precedence=precedence)
        _merge(row, precedence, values)

    def attempt(self, key: AttemptKey, precedence: int, **values: Any) -> None:
        row = self.attempts.get(key)
        if row is None:
            row = self.attempts[key] = {c: None for c in ATTEMPT_COLUMNS}
            workflow_id, task_id, compensation, attempt = key
            row.update(
                workflow_id=workflow_id,
                task_id=task_id,
                compensation=compensation,
                attempt=attempt,
                precedence=precedence,
            )
        _merge(row, precedence, values)


def _merge(row: dict[str, Any], precedence: int, values: dict[str, Any]) -> None:
    """The database's rule (`podium.history.database`), on a row of this batch."""
    stronger = precedence >= row["precedence"]
    for column, value in values.items():
        if value is not None and (stronger or row[column] is None):
            row[column] = value
    row["precedence"] = max(row["precedence"], precedence)


def epoch(iso: str | None) -> float | None:
    return None if iso is None else datetime.fromisoformat(iso).timestamp()


# -- one function per event type --------------------------------------------------------


@singledispatch
def _rows(data: Payload, event: CloudEvent, batch: Batch) -> None:
    """Triggers and any other event type: nothing to keep."""


@_rows.register
def _started(data: WorkflowStarted, event: CloudEvent, batch: Batch) -> None:
    batch.workflow(
        event.workflowid,
        BY_START,
        **_of(data),
        mode=str(data.mode),
        state="Running",
        input=data.input,
        started_at=event.time.timestamp(),
    )


@_rows.register(WorkflowCompleted)
@_rows.register(WorkflowFailed)
def _ended(data: WorkflowCompleted | WorkflowFailed, event: CloudEvent, batch: Batch) -> None:
    workflow_id = event.workflowid
    batch.workflow(
        workflow_id,
        BY_END,
        **_of(data),
        mode=str(data.mode),
        state=data.state,
        output=data.output,
        error=data.error.model_dump() if data.error else None,
        # the workflow's own times (its start event was sent a moment after it started)
        started_at=epoch(data.started_at),
        ended_at=epoch(data.ended_at) or event.time.timestamp(),
        result=data.model_dump(mode="json"),
    )
    for task_id, task in data.tasks.items():
        # the last attempt's end as the workflow saw it: an attempt that timed out has
        # no outcome event; a real outcome's time and values take precedence
        if task.attempts < 1 or task.state not in ("Succeeded", "Failed"):
            continue
        batch.attempt(
            (workflow_id, task_id, False, task.attempts),
            BY_SUMMARY,
            **_of(data),
            mode=str(data.mode),
            state=task.state,
            output=task.output,
            error=task.error.model_dump() if task.error else None,
        )
    batch.ended.add(workflow_id)


@_rows.register
def _command(data: TaskCommand, event: CloudEvent, batch: Batch) -> None:
    at = event.time.timestamp()
    batch.attempt(
        _attempt(event, data),
        BY_COMMAND,
        **_task(data),
        state="Running",
        input=data.input,
        scheduled_at=at,
    )


@_rows.register
def _marker(data: TaskStarted, event: CloudEvent, batch: Batch) -> None:
    at = event.time.timestamp()
    batch.attempt(
        _attempt(event, data), BY_MARKER, **_task(data), state="Running", input=data.input,
        started_at=at,
    )  # fmt: skip


@_rows.register
def _succeeded(data: TaskSucceeded, event: CloudEvent, batch: Batch) -> None:
    at = event.time.timestamp()
    batch.attempt(
        _attempt(event, data), BY_OUTCOME, **_task(data), state="Succeeded", output=data.output,
        ended_at=at,
    )  # fmt: skip


@_rows.register
def _failed(data: TaskFailed, event: CloudEvent, batch: Batch) -> None:
    at = event.time.timestamp()
    batch.attempt(
        _attempt(event, data), BY_OUTCOME, **_task(data), state="Failed",
        error=data.error.model_dump(), ended_at=at,
    )  # fmt: skip


@_rows.register
def _skipped(data: TaskSkipped, event: CloudEvent, batch: Batch) -> None:
    """A choreography participant's verdict: attempt 0, a task decided without running."""
    batch.attempt(
        (event.workflowid, data.task_id, data.compensation, 0), BY_OUTCOME, **_task(data),
        state="Skipped", ended_at=event.time.timestamp(), reason=data.reason,
    )  # fmt: skip


def _of(data: Payload) -> dict[str, Any]:
    return {"name": data.workflow, "version": data.version}


def _task(
    data: TaskCommand | TaskStarted | TaskSucceeded | TaskFailed | TaskSkipped,
) -> dict[str, Any]:
    return {**_of(data), "task_type": data.task_type, "mode": str(data.mode)}


def _attempt(
    event: CloudEvent, data: TaskCommand | TaskStarted | TaskSucceeded | TaskFailed
) -> AttemptKey:
    return (event.workflowid, data.task_id, data.compensation, data.attempt)
