"""The changelog values of the conductor (and tracker) and of a choreography participant.

Restores must read what a running deployment wrote: the values in
``tests/golden/snapshots`` were written by the code before the formats moved into
``podium.conductor.snapshot`` and ``podium.services.snapshot`` (see ``record.py``
there), and every one must still decode — and, while the format has not changed,
encode back to the very same bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.conductor import snapshot as conductor
from podium.conductor.wire import result_of
from podium.events import ErrorInfo, Mode, TaskFailed, TaskSucceeded
from podium.services import snapshot as participant
from podium.workflow import machine
from podium.workflow.join import Join, Mine
from podium.workflow.loader import parse_definition
from podium.workflow.machine import Started, TaskStatus, WorkflowState, WorkflowStatus, decide

OLD = Path(__file__).resolve().parent / "golden" / "snapshots"


def lines(name: str) -> list[bytes]:
    values = (OLD / name).read_bytes().splitlines()
    assert values, f"no recorded values in {name}"
    return values


ONE = parse_definition({"name": "one", "tasks": [{"id": "a", "type": "svc.a", "timeout": "5s"}]})


def a_state() -> WorkflowState:
    state, _ = decide(ONE, None, Started(workflow_id="w", input={"x": 1}, seed=3), 10.0)
    assert state is not None
    return state


def an_ended_state() -> WorkflowState:
    done = machine.TaskSucceeded(task_id="a", attempt=1, output={"y": 2})
    state, _ = decide(ONE, a_state(), done, 11.0)
    assert state.status is WorkflowStatus.SUCCEEDED
    return state


def outcomes() -> tuple[TaskSucceeded | TaskFailed, ...]:
    common = {"workflow": "one", "version": 1, "task_id": "a", "task_type": "svc.a"}
    return (
        TaskSucceeded(**common, command_id="w:a:1", attempt=1, output={"y": 2}),
        TaskFailed(
            **common,
            command_id="w:a:compensate:1",
            attempt=1,
            compensation=True,
            mode=Mode.CHOREOGRAPHY,
            error=ErrorInfo(type="E", message="m", retryable=False),
        ),
    )


# -- the conductor's and the tracker's --------------------------------------------------


def test_every_conductor_value_written_before_still_decodes_to_the_same_bytes() -> None:
    kinds = set()
    for value in lines("conductor.jsonl"):
        snapshot = conductor.decode(value)
        kinds.add((snapshot.state is not None, bool(snapshot.held), snapshot.ended is not None))
        assert conductor.encode(snapshot) == value
    # live states with and without held outcomes, results, held outcomes alone
    assert kinds == {
        (True, False, False),
        (True, True, False),
        (False, False, True),
        (False, True, False),
    }


@pytest.mark.parametrize(
    "snapshot",
    [
        conductor.Snapshot(Mode.ORCHESTRATION, a_state()),
        conductor.Snapshot(Mode.CHOREOGRAPHY, a_state(), outcomes()),
        conductor.Snapshot(held=outcomes()),
        conductor.Snapshot(Mode.CHOREOGRAPHY, ended=result_of(an_ended_state(), Mode.CHOREOGRAPHY)),
    ],
    ids=["state", "state-and-held", "held-only", "ended"],
)
def test_a_conductor_snapshot_round_trips(snapshot: conductor.Snapshot) -> None:
    assert conductor.decode(conductor.encode(snapshot)) == snapshot


def test_a_value_without_a_mode_is_orchestration() -> None:
    value = b'{"state":' + a_state().model_dump_json().encode() + b"}"
    assert conductor.decode(value) == conductor.Snapshot(Mode.ORCHESTRATION, a_state())


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b'{"mode":"sideways"}',
        b'{"state":{"workflow_id":"w"}}',
        b'{"held":[{"type":"podium.task.command","data":{}}]}',
        b'{"held":[{"type":"no.such.type","data":{}}]}',
        b'{"ended":{"type":"podium.task.succeeded","data":{"workflow":"one","version":1,'
        b'"command_id":"c","task_id":"a","task_type":"svc.a","attempt":1}}}',
    ],
)
def test_an_unreadable_conductor_value_raises_what_restores_skip(value: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        conductor.decode(value)


# -- a choreography participant's --------------------------------------------------------


def test_every_participant_value_written_before_still_decodes_to_the_same_bytes() -> None:
    kinds = set()
    for value in lines("participant.jsonl"):
        snapshot = participant.decode(value)
        kinds.add(type(snapshot))
        assert participant.encode(snapshot) == value
    assert kinds == {Join, participant.Ended}


@pytest.mark.parametrize(
    "snapshot",
    [
        Join(workflow_id="w", name="one", version=1, tasks={"a": Mine()}),
        Join(
            workflow_id="w",
            name="one",
            version=1,
            input={"x": 1},
            seen={"up": (TaskStatus.SUCCEEDED, {"y": 2})},
            tasks={"a": Mine(status=TaskStatus.RETRYING, attempt=2, input={}, retry_due=5.5)},
            compensations={"a": Mine()},
            undone={"b": TaskStatus.FAILED},
            failed=True,
        ),
        participant.Ended(1764470000.25),
    ],
    ids=["new", "retrying", "ended"],
)
def test_a_participant_snapshot_round_trips(snapshot: participant.Snapshot) -> None:
    assert participant.decode(participant.encode(snapshot)) == snapshot


@pytest.mark.parametrize("value", [b"[]", b'{"ended":"soon"}', b'{"workflow_id":"w"}', b"7"])
def test_an_unreadable_participant_value_raises_what_restores_skip(value: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        participant.decode(value)
