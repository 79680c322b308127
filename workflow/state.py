"""The state machine's state: one workflow's tasks, timers, compensations and history."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from podium.workflow.messages import Frozen, TimerPurpose
from podium.workflow.states import TaskStatus, WorkflowStatus


class TaskState(Frozen):
    status: TaskStatus = TaskStatus.PENDING
    attempts: int = 0  # the current (or last) attempt number; 0 = never started
    output: Any = None
    error: dict[str, Any] | None = None  # {type, message, retryable}
    started_at: float | None = None  # first attempt
    ended_at: float | None = None


class Timer(Frozen):
    due: float
    purpose: TimerPurpose
    task_id: str | None = None
    attempt: int | None = None  # retry: the attempt it starts; attempt_timeout: the attempt it ends
    compensation: bool = False


class HistoryEntry(Frozen):
    """One transition; ``task_id`` None is a workflow-level transition."""

    time: float
    task_id: str | None = None
    from_state: str | None = None
    to_state: str
    attempt: int | None = None
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    compensation: bool = False
    reason: str | None = None


class WorkflowState(Frozen):
    workflow_id: str
    name: str
    version: int
    status: WorkflowStatus
    input: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    error: dict[str, Any] | None = None
    started_at: float
    ended_at: float | None = None
    seed: int = 0
    observed: bool = False
    tasks: dict[str, TaskState] = Field(default_factory=dict)
    timers: dict[str, Timer] = Field(default_factory=dict)
    completed: tuple[str, ...] = ()  # Succeeded task ids in completion order
    compensations: dict[str, TaskState] = Field(default_factory=dict)
    compensation_queue: tuple[
        str, ...
    ] = ()  # still to compensate; the first is the one in progress
    history: tuple[HistoryEntry, ...] = ()
