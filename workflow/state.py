"""The state machine's state: one workflow's tasks, timers, compensations and history.

The machine makes every state through the named constructors below, never through
the models' own constructors: each one checks what matters (a step's attempts count
from 1, a task moves only along its life) and then builds without pydantic's
validation, which the hot path cannot afford (see ``Frozen._trusted``). A state
read back from a changelog or a recording is validated by pydantic as usual.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from podium.workflow.messages import Frozen, ScheduleTimer, Step, TimerPurpose
from podium.workflow.states import TaskStatus, WorkflowStatus

__all__ = [
    "PENDING",
    "HistoryEntry",
    "IllegalTransition",
    "TaskState",
    "Timer",
    "WorkflowState",
]

_PENDING, _RUNNING, _RETRYING = TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.RETRYING
_SUCCEEDED, _FAILED, _SKIPPED = TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED


class IllegalTransition(ValueError):
    """A task state asked to move where a step's life does not go: a bug in the machine."""


class TaskState(Frozen):
    """One step's life (a task's, or its compensation's).

    Pending, then attempts 1, 2, ... (Running; Retrying between two) to an end:
    Succeeded or Failed, or Skipped (or Failed) without an attempt. The methods
    below are the transitions; each returns the next state and raises
    ``IllegalTransition`` for a move the life does not have.
    """

    status: TaskStatus = TaskStatus.PENDING
    attempts: int = 0  # the current (or last) attempt number; 0 = never started
    output: Any = None
    error: dict[str, Any] | None = None  # {type, message, retryable}
    started_at: float | None = None  # first attempt
    ended_at: float | None = None

    # -- an attempt starts

    def running(self, attempt: int, now: float) -> TaskState:
        """Attempt ``attempt`` starts: the first from Pending, the next one from Retrying."""
        status = self.status
        if not (
            (status is _PENDING and attempt == 1)
            or (status is _RETRYING and attempt == self.attempts + 1)
        ):
            raise self._illegal(_RUNNING, attempt)
        started = self.started_at
        return self._trusted(
            {
                "status": _RUNNING,
                "attempts": attempt,
                "output": None,
                "error": None,
                "started_at": now if started is None else started,
                "ended_at": None,
            }
        )

    def failed_to_start(self, attempt: int, error: dict[str, Any], now: float) -> TaskState:
        """Attempt ``attempt`` could not start (its input did not render): Failed for good."""
        status = self.status
        if not (
            (status is _PENDING and attempt == 1)
            or (status is _RETRYING and attempt == self.attempts + 1)
        ):
            raise self._illegal(_FAILED, attempt)
        return self._trusted(
            {
                "status": _FAILED,
                "attempts": attempt,
                "output": None,
                "error": error,
                "started_at": now,
                "ended_at": now,
            }
        )

    # -- the running attempt ends

    def succeeded(self, attempt: int, output: Any, now: float) -> TaskState:
        if self.status is not _RUNNING or attempt != self.attempts:
            raise self._illegal(_SUCCEEDED, attempt)
        return self._trusted(
            {
                "status": _SUCCEEDED,
                "attempts": attempt,
                "output": output,
                "error": None,
                "started_at": self.started_at,
                "ended_at": now,
            }
        )

    def retrying(self, attempt: int, error: dict[str, Any]) -> TaskState:
        """The attempt failed; the next one starts after a backoff."""
        if self.status is not _RUNNING or attempt != self.attempts:
            raise self._illegal(_RETRYING, attempt)
        return self._trusted(
            {
                "status": _RETRYING,
                "attempts": attempt,
                "output": None,
                "error": error,
                "started_at": self.started_at,
                "ended_at": None,
            }
        )

    def failed(self, attempt: int, error: dict[str, Any], now: float) -> TaskState:
        """The attempt failed, and no other one follows."""
        if self.status is not _RUNNING or attempt != self.attempts:
            raise self._illegal(_FAILED, attempt)
        return self._trusted(
            {
                "status": _FAILED,
                "attempts": attempt,
                "output": None,
                "error": error,
                "started_at": self.started_at,
                "ended_at": now,
            }
        )

    # -- an end without an attempt of ours

    def skipped(self, now: float) -> TaskState:
        """``when`` was false, or an upstream task was skipped."""
        if self.status is not _PENDING:
            raise self._illegal(_SKIPPED)
        return self._trusted(
            {
                "status": _SKIPPED,
                "attempts": 0,
                "output": None,
                "error": None,
                "started_at": None,
                "ended_at": now,
            }
        )

    def rejected(self, error: dict[str, Any], now: float) -> TaskState:
        """Never run: its ``when`` or input did not evaluate. Failed, with no attempt."""
        if self.status is not _PENDING:
            raise self._illegal(_FAILED)
        return self._trusted(
            {
                "status": _FAILED,
                "attempts": 0,
                "output": None,
                "error": error,
                "started_at": None,
                "ended_at": now,
            }
        )

    def succeeded_unseen(self, attempt: int, output: Any, now: float) -> TaskState:
        """Observed: attempt ``attempt`` succeeded, and its start was never seen."""
        if self.status is not _PENDING or attempt < 1:
            raise self._illegal(_SUCCEEDED, attempt)
        return self._trusted(
            {
                "status": _SUCCEEDED,
                "attempts": attempt,
                "output": output,
                "error": None,
                "started_at": now,
                "ended_at": now,
            }
        )

    def _illegal(self, to: TaskStatus, attempt: int | None = None) -> IllegalTransition:
        at = "" if attempt is None else f" (attempt {attempt})"
        return IllegalTransition(f"{self.status} after attempt {self.attempts} -> {to}{at}")


PENDING = TaskState()


class Timer(Frozen):
    due: float
    purpose: TimerPurpose
    task_id: str | None = None
    attempt: int | None = None  # retry: the attempt it starts; attempt_timeout: the attempt it ends
    compensation: bool = False

    @classmethod
    def retry(cls, due: float, step: Step, attempt: int) -> Timer:
        """Starts attempt ``attempt`` (the second or later) of ``step`` at ``due``."""
        if attempt < 2:
            raise ValueError(f"{step}: a retry starts attempt 2 or later, not {attempt}")
        return cls._of_step("retry", due, step, attempt)

    @classmethod
    def attempt_timeout(cls, due: float, step: Step, attempt: int) -> Timer:
        """Fails attempt ``attempt`` of ``step`` if it still runs at ``due``."""
        if attempt < 1:
            raise ValueError(f"{step}: attempts count from 1, not {attempt}")
        return cls._of_step("attempt_timeout", due, step, attempt)

    @classmethod
    def workflow_timeout(cls, due: float) -> Timer:
        return cls._trusted(
            {
                "due": due,
                "purpose": "workflow_timeout",
                "task_id": None,
                "attempt": None,
                "compensation": False,
            }
        )

    @classmethod
    def _of_step(cls, purpose: TimerPurpose, due: float, step: Step, attempt: int) -> Timer:
        return cls._trusted(
            {
                "due": due,
                "purpose": purpose,
                "task_id": step.task_id,
                "attempt": attempt,
                "compensation": step.compensation,
            }
        )

    @property
    def step(self) -> Step | None:
        """The step whose attempt it starts or ends; None for the workflow's timeout."""
        return None if self.task_id is None else Step(self.task_id, self.compensation)

    def command(self, timer_id: str, workflow_id: str) -> ScheduleTimer:
        """The command that arms this timer."""
        return ScheduleTimer.arming(timer_id, workflow_id, self)


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

    @classmethod
    def of_step(
        cls,
        time: float,
        step: Step,
        before: TaskStatus,
        task: TaskState,
        *,
        input: Any = None,
        reason: str | None = None,
    ) -> HistoryEntry:
        """``step`` moved from ``before`` to ``task`` (made by a transition: already checked)."""
        status = task.status
        return cls._trusted(
            {
                "time": time,
                "task_id": step.task_id,
                "from_state": before.value,
                "to_state": status.value,
                "attempt": task.attempts or None,
                "input": input,
                "output": task.output if status is _SUCCEEDED else None,
                "error": task.error if status is _FAILED or status is _RETRYING else None,
                "compensation": step.compensation,
                "reason": reason,
            }
        )

    @classmethod
    def of_workflow(
        cls,
        time: float,
        before: WorkflowStatus | None,
        after: WorkflowStatus,
        *,
        input: Any = None,
        output: Any = None,
        error: dict[str, Any] | None = None,
    ) -> HistoryEntry:
        """The workflow moved from ``before`` (None: it started) to ``after``."""
        return cls._trusted(
            {
                "time": time,
                "task_id": None,
                "from_state": None if before is None else before.value,
                "to_state": after.value,
                "attempt": None,
                "input": input,
                "output": output,
                "error": error,
                "compensation": False,
                "reason": None,
            }
        )


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

    @classmethod
    def started(
        cls,
        workflow_id: str,
        name: str,
        version: int,
        input: dict[str, Any],
        *,
        seed: int,
        observed: bool,
        tasks: tuple[str, ...],
        now: float,
    ) -> WorkflowState:
        """A workflow that starts now, every task Pending.

        Not validated: the identity and input come from a validated ``Started`` event,
        the name, version and tasks from a validated ``Definition``.
        """
        return cls._trusted(
            {
                "workflow_id": workflow_id,
                "name": name,
                "version": version,
                "status": WorkflowStatus.RUNNING,
                "input": input,
                "output": None,
                "error": None,
                "started_at": now,
                "ended_at": None,
                "seed": seed,
                "observed": observed,
                "tasks": dict.fromkeys(tasks, PENDING),
                "timers": {},
                "completed": (),
                "compensations": {},
                "compensation_queue": (),
                "history": (),
            }
        )

    def evolved(
        self,
        *,
        status: WorkflowStatus,
        tasks: dict[str, TaskState],
        timers: dict[str, Timer],
        completed: tuple[str, ...],
        compensations: dict[str, TaskState],
        compensation_queue: tuple[str, ...],
        history: tuple[HistoryEntry, ...],
        output: Any,
        error: dict[str, Any] | None,
        ended_at: float | None,
    ) -> WorkflowState:
        """This state after one decision: its identity kept, the rest replaced.

        Not validated: this state was, and the machine made every new task state,
        timer and history entry with the named constructors above.
        """
        return self._trusted(
            {
                **self.__dict__,
                "status": status,
                "tasks": tasks,
                "timers": timers,
                "completed": completed,
                "compensations": compensations,
                "compensation_queue": compensation_queue,
                "history": history,
                "output": output,
                "error": error,
                "ended_at": ended_at,
            }
        )
