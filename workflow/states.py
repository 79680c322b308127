"""Task and workflow states (the operational names people expect; see DESIGN.md)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RESOLVED", "TERMINAL", "TaskStatus", "WorkflowStatus"]


class TaskStatus(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    RETRYING = "Retrying"
    SKIPPED = "Skipped"


class WorkflowStatus(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    COMPENSATING = "Compensating"
    COMPENSATED = "Compensated"
    CANCELLED = "Cancelled"
    TIMED_OUT = "TimedOut"


TERMINAL = frozenset(
    {
        WorkflowStatus.SUCCEEDED,
        WorkflowStatus.FAILED,
        WorkflowStatus.COMPENSATED,
        WorkflowStatus.CANCELLED,
        WorkflowStatus.TIMED_OUT,
    }
)

# A resolved task lets its dependents be evaluated.
RESOLVED = frozenset({TaskStatus.SUCCEEDED, TaskStatus.SKIPPED})
