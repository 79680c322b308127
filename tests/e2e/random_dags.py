"""Random workflow DAGs with scripted behaviour, and what the pure core says of them.

Each task runs `test.step` with an input that scripts its fate: how many
attempts fail transiently (`fail_times`), or a failure for good (`fatal`).
`expected` replays the same script through `decide` alone, with no broker: the
state every deployment must reach.
"""

from __future__ import annotations

import random
from typing import Any

from podium.workflow.definition import Definition
from podium.workflow.loader import parse_definition
from podium.workflow.machine import (
    RunTask,
    ScheduleTimer,
    TaskFailed,
    TaskSucceeded,
    TimerFired,
    decide,
)
from podium.workflow.machine import Started as StartedEvent
from podium.workflow.states import TERMINAL


def generate(seed: int, count: int) -> list[Definition]:
    rng = random.Random(seed)
    definitions = []
    for n in range(count):
        size = rng.randint(3, 7)
        tasks: list[dict[str, Any]] = []
        for i in range(size):
            deps = sorted(rng.sample(range(i), k=min(i, rng.randint(0, 2))))
            fate = rng.choices(["ok", "flaky", "exhausted", "fatal"], weights=[6, 3, 1, 1])[0]
            script: dict[str, Any] = {"echo": f"t{i}"}
            if fate == "flaky":
                script["fail_times"] = rng.randint(1, 2)
            elif fate == "exhausted":
                script["fail_times"] = 9
            elif fate == "fatal":
                script["fatal"] = True
            spec: dict[str, Any] = {
                "id": f"t{i}",
                "type": "test.step",
                "depends_on": [f"t{d}" for d in deps],
                "input": script,
                "retry": {"max_attempts": 3, "backoff": "10ms", "max_backoff": "50ms"},
            }
            if rng.random() < 0.3:
                spec["compensate"] = {"type": "test.undo", "input": {"undo": f"t{i}"}}
            tasks.append(spec)
        on_failure = rng.choice(["fail", "compensate"])
        data = {"name": f"random{n}", "version": 1, "on_failure": on_failure, "tasks": tasks}
        definitions.append(parse_definition(data, source=f"random{n}"))
    return definitions


def fails_for_good(definition: Definition) -> bool:
    return any(
        task.input.get("fatal") or task.input.get("fail_times", 0) >= task.retry.max_attempts
        for task in definition.tasks
    )


def expected(definition: Definition) -> tuple[str, dict[str, tuple[str, int]]]:
    """Run the scripted behaviour through the pure core: (workflow state, task states)."""
    state, pending = decide(definition, None, StartedEvent(workflow_id="sim", input={}), 0.0)
    now = 0.0
    while pending and state is not None and state.status not in TERMINAL:
        command = pending.pop(0)
        now += 0.001
        if isinstance(command, RunTask):
            event: Any = _outcome(command)
        elif isinstance(command, ScheduleTimer) and command.purpose == "retry":
            now = max(now, command.due)
            event = TimerFired(timer_id=command.timer_id)
        else:
            continue  # attempt and workflow timeouts: none in these scripts
        state, more = decide(definition, state, event, now)
        pending += more
    assert state is not None
    return str(state.status), {t: (str(s.status), s.attempts) for t, s in state.tasks.items()}


def _outcome(command: RunTask) -> TaskSucceeded | TaskFailed:
    script = command.input or {}
    if command.compensation:
        return TaskSucceeded(
            task_id=command.task_id, attempt=command.attempt, output={}, compensation=True
        )
    if command.attempt <= int(script.get("fail_times") or 0):
        return TaskFailed(
            task_id=command.task_id,
            attempt=command.attempt,
            error_type="RuntimeError",
            message="transient",
            retryable=True,
        )
    if script.get("fatal"):
        return TaskFailed(
            task_id=command.task_id,
            attempt=command.attempt,
            error_type="TaskError",
            message="fatal",
            retryable=False,
        )
    return TaskSucceeded(
        task_id=command.task_id,
        attempt=command.attempt,
        output={"task": command.task_id, "echo": script.get("echo")},
    )
