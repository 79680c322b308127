"""Small drivers for the state machine tests."""

from __future__ import annotations

from typing import Any

from podium.workflow.definition import Definition
from podium.workflow.loader import parse_definition
from podium.workflow.machine import (
    CancelRequested,
    Command,
    Event,
    RunTask,
    ScheduleTimer,
    Started,
    TaskFailed,
    TaskStatus,
    TaskSucceeded,
    TimerFired,
    WorkflowFinished,
    WorkflowState,
    decide,
)


def definition(*tasks: dict[str, Any], **settings: Any) -> Definition:
    """A definition from task dicts (``name`` defaults to ``t``)."""
    return parse_definition({"name": "t", "version": 1, **settings, "tasks": list(tasks)})


def task(task_id: str, *deps: str, **fields: Any) -> dict[str, Any]:
    return {"id": task_id, "type": f"svc.{task_id}", "depends_on": list(deps), **fields}


class Run:
    """One workflow driven through ``decide`` by hand."""

    def __init__(
        self,
        definition: Definition,
        input: dict[str, Any] | None = None,
        *,
        workflow_id: str = "wf",
        seed: int = 7,
        now: float = 1000.0,
    ) -> None:
        self.definition = definition
        self.state: WorkflowState | None = None
        self.now = now
        self.log: list[Command] = []
        self.first = self.send(Started(workflow_id=workflow_id, input=input or {}, seed=seed))

    def send(self, event: Event, at: float | None = None) -> list[Command]:
        if at is not None:
            self.now = at
        self.state, commands = decide(self.definition, self.state, event, self.now)
        self.log.extend(commands)
        return commands

    @property
    def st(self) -> WorkflowState:
        assert self.state is not None
        return self.state

    def attempt(self, task_id: str, compensation: bool = False) -> int:
        tasks = self.st.compensations if compensation else self.st.tasks
        return tasks[task_id].attempts

    def ok(
        self,
        task_id: str,
        output: Any = None,
        *,
        attempt: int | None = None,
        compensation: bool = False,
        at: float | None = None,
    ) -> list[Command]:
        n = attempt if attempt is not None else self.attempt(task_id, compensation)
        return self.send(
            TaskSucceeded(task_id=task_id, attempt=n, output=output, compensation=compensation), at
        )

    def fail(
        self,
        task_id: str,
        *,
        retryable: bool = True,
        attempt: int | None = None,
        compensation: bool = False,
        error_type: str = "Boom",
        at: float | None = None,
    ) -> list[Command]:
        n = attempt if attempt is not None else self.attempt(task_id, compensation)
        event = TaskFailed(
            task_id=task_id,
            attempt=n,
            error_type=error_type,
            message="boom",
            retryable=retryable,
            compensation=compensation,
        )
        return self.send(event, at)

    def fire(self, timer_id: str, at: float | None = None) -> list[Command]:
        return self.send(TimerFired(timer_id=timer_id), at)

    def cancel(self, reason: str = "") -> list[Command]:
        return self.send(CancelRequested(reason=reason))

    def status(self, task_id: str) -> TaskStatus:
        return self.st.tasks[task_id].status


def runs(commands: list[Command]) -> list[str]:
    return [c.task_id for c in commands if isinstance(c, RunTask) and not c.compensation]


def compensations(commands: list[Command]) -> list[str]:
    return [c.task_id for c in commands if isinstance(c, RunTask) and c.compensation]


def timers(commands: list[Command]) -> list[ScheduleTimer]:
    return [c for c in commands if isinstance(c, ScheduleTimer)]


def finished(commands: list[Command]) -> list[WorkflowFinished]:
    return [c for c in commands if isinstance(c, WorkflowFinished)]


def run_task(commands: list[Command], task_id: str) -> RunTask:
    found = [c for c in commands if isinstance(c, RunTask) and c.task_id == task_id]
    assert len(found) == 1, commands
    return found[0]
