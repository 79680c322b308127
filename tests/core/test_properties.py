"""Property tests: random DAGs, random outcome orders, duplicates, late timers.

A simulated world holds every command the machine issued; at each step
hypothesis picks one to deliver (a task outcome, possibly twice, or a timer),
in any order. Whatever happens, the workflow must reach exactly one terminal
state, never start a task before its dependencies are resolved, never issue a
command id twice, and replaying the same events must give the same commands.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import event as event_note
from hypothesis import strategies as st

from podium.workflow.choreography import compensation_order
from podium.workflow.definition import Definition
from podium.workflow.machine import (
    TERMINAL,
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
    WorkflowStatus,
    decide,
)
from podium.workflow.states import RESOLVED

from .helpers import definition

SETTINGS = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def workflows(draw: st.DrawFn) -> tuple[Definition, dict[str, Any]]:
    n = draw(st.integers(1, 7))
    tasks = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=3)) if i else []
        spec: dict[str, Any] = {
            "id": f"t{i}",
            "type": f"svc.t{i}",
            "depends_on": [f"t{j}" for j in deps],
            "retry": {
                "max_attempts": draw(st.integers(1, 3)),
                "backoff": draw(st.sampled_from([0, 0.5, 2])),
                "jitter": 0.3,
                "max_backoff": 5,
            },
        }
        if deps:
            spec["input"] = {"up": f"${{ tasks.t{deps[0]}.state }}", "n": "${ workflow.input.n }"}
        if draw(st.integers(0, 4)) == 0:
            spec["when"] = f"workflow.input.flags[{i}]"
        if draw(st.integers(0, 4)) == 0:
            spec["skip_if_upstream_skipped"] = True
        if draw(st.booleans()):
            spec["timeout"] = draw(st.sampled_from([1, 3]))
        if draw(st.booleans()):
            spec["compensate"] = {
                "type": f"undo.t{i}",
                "retry": {"max_attempts": draw(st.integers(1, 2))},
            }
        tasks.append(spec)
    on_failure = draw(st.sampled_from(["fail", "compensate"]))
    timeout = draw(st.sampled_from([None, 20.0]))
    extra = {"timeout": timeout} if timeout else {}
    flags = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return definition(*tasks, on_failure=on_failure, **extra), {"n": 1, "flags": flags}


def check_commands(
    d: Definition, state: WorkflowState, commands: list[Command], seen: set[str]
) -> None:
    for command in commands:
        if isinstance(command, RunTask):
            assert command.command_id not in seen, f"command issued twice: {command.command_id}"
            seen.add(command.command_id)
            if command.compensation:
                assert state.status is WorkflowStatus.COMPENSATING
            else:
                for dep in d.task(command.task_id).depends_on:
                    assert state.tasks[dep].status in RESOLVED, (
                        f"{command.task_id} started before {dep}"
                    )
                assert state.status is WorkflowStatus.RUNNING


def replay(
    d: Definition, events: list[tuple[float, Event]]
) -> tuple[WorkflowState | None, list[Command]]:
    state: WorkflowState | None = None
    out: list[Command] = []
    for now, event in events:
        state, commands = decide(d, state, event, now)
        out.extend(commands)
    return state, out


@SETTINGS
@given(workflows(), st.data())
def test_any_delivery_order_reaches_exactly_one_terminal_state(
    wf: tuple[Definition, dict[str, Any]], data: st.DataObject
) -> None:
    d, workflow_input = wf
    now = 0.0
    events: list[tuple[float, Event]] = [
        (now, Started(workflow_id="w", input=workflow_input, seed=data.draw(st.integers(0, 9))))
    ]
    state, commands = decide(d, None, events[0][1], now)
    assert state is not None
    seen: set[str] = set()
    check_commands(d, state, commands, seen)
    log = list(commands)
    pending: list[Command] = [c for c in commands if not isinstance(c, WorkflowFinished)]
    duplicates = 0
    while state.status not in TERMINAL:
        assert pending, f"stuck: {state.status} {state.tasks}"
        index = data.draw(st.integers(0, len(pending) - 1))
        chosen = pending[index]
        early_timeout = (
            isinstance(chosen, ScheduleTimer)
            and chosen.purpose == "workflow_timeout"
            and len(pending) > 1
        )
        # Mostly, let the workflow run its course before its timeout fires.
        if early_timeout and data.draw(st.integers(0, 9)):
            index = (index + 1) % len(pending)
        item = pending.pop(index)
        now += data.draw(st.sampled_from([0.0, 0.5, 1.0]))
        event: Event
        if isinstance(item, ScheduleTimer):
            now = max(now, item.due)
            event = TimerFired(timer_id=item.timer_id)
        elif data.draw(st.integers(0, 99)) == 0:
            event = CancelRequested(reason="property")
            pending.append(item)  # still delivered: a saga awaits the attempts running
        else:
            assert isinstance(item, RunTask)
            outcome = data.draw(st.sampled_from(["ok", "ok", "ok", "retryable", "fatal"]))
            if outcome == "ok":
                event = TaskSucceeded(
                    task_id=item.task_id,
                    attempt=item.attempt,
                    output={"by": item.command_id},
                    compensation=item.compensation,
                )
            else:
                event = TaskFailed(
                    task_id=item.task_id,
                    attempt=item.attempt,
                    error_type="Boom",
                    message="boom",
                    retryable=outcome == "retryable",
                    compensation=item.compensation,
                )
            if duplicates < 5 and data.draw(st.booleans()):
                duplicates += 1
                pending.append(item)  # delivered again later: at-least-once
        events.append((now, event))
        state, commands = decide(d, state, event, now)
        check_commands(d, state, commands, seen)
        log.extend(commands)
        pending.extend(c for c in commands if not isinstance(c, WorkflowFinished))

    event_note(f"status={state.status.value}")
    finishes = [c for c in log if isinstance(c, WorkflowFinished)]
    assert len(finishes) == 1 and finishes[0].status is state.status
    assert isinstance(log[-1], WorkflowFinished)
    assert state.ended_at is not None and state.timers == {}
    if state.status is WorkflowStatus.SUCCEEDED:
        assert all(t.status in RESOLVED for t in state.tasks.values())
    undone = state.status is WorkflowStatus.CANCELLED and d.on_failure == "compensate"
    if state.status is WorkflowStatus.COMPENSATED or undone:
        done = [tid for tid, c in state.compensations.items() if c.status is TaskStatus.SUCCEEDED]
        assert sorted(done) == sorted(compensation_order(d, state.completed))
    order = [c.task_id for c in log if isinstance(c, RunTask) and c.compensation and c.attempt == 1]
    assert order == compensation_order(d, state.completed)[: len(order)]

    # Anything delivered after the end changes nothing.
    for item in pending:
        late: Event = (
            TimerFired(timer_id=item.timer_id)
            if isinstance(item, ScheduleTimer)
            else CancelRequested()
        )
        assert decide(d, state, late, now + 1) == (state, [])

    # Replaying the recorded events reproduces every command and the final state.
    replayed_state, replayed = replay(d, events)
    assert replayed == log
    assert replayed_state == state
    assert WorkflowState.model_validate_json(state.model_dump_json()) == state
