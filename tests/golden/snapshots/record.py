"""Record changelog values as the code of the day writes them:
``python tests/golden/snapshots/record.py OUT_DIR``.

Writes ``conductor.jsonl`` and ``participant.jsonl`` into OUT_DIR: one changelog
value a line, exactly as ``Conductor.snapshot`` (the tracker's too) and
``Participant.snapshot`` return it, for states reached by replaying the golden
histories (the conductor's and, with ``observed``, the tracker's), outcomes the
tracker holds, ended workflows, and choreography joins at every stage.

``tests/test_snapshots.py`` decodes every line of the files kept here: restores
must read what a running deployment wrote. The files beside this script were
written by the code before the snapshot formats moved into
``podium.conductor.snapshot`` and ``podium.services.snapshot`` (commit a7eb18b).
Never re-record over them: when a format changes, record new files beside them
and keep the old ones. Only public API that has not changed is used here, so the
script runs against that commit's code as well as today's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from podium.conductor.conductor import Conductor, EndedRecord
from podium.conductor.wire import result_of
from podium.events import ErrorInfo, Mode, TaskFailed, TaskSucceeded
from podium.services.participant import Participant
from podium.workflow.join import Join, Mine
from podium.workflow.loader import load_definition
from podium.workflow.machine import Started, WorkflowState, decide, event_adapter
from podium.workflow.states import TERMINAL
from podium.workflow.states import TaskStatus as S

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden"


def replay(name: str, *, observed: bool) -> list[WorkflowState]:
    """Every state of a golden history (the tracker's when `observed`)."""
    recording: dict[str, Any] = json.loads((GOLDEN / f"{name}.json").read_text())
    definition = load_definition(ROOT / recording["definition"])
    state: WorkflowState | None = None
    states: list[WorkflowState] = []
    for step in recording["steps"]:
        event = event_adapter.validate_python(step["event"])
        if isinstance(event, Started):
            event = event.model_copy(update={"observed": observed})
        new, _ = decide(definition, state, event, step["now"])
        if new is not None and new is not state:
            states.append(new)
        state = new
    return states


def outcomes(workflow: str) -> tuple[TaskSucceeded | TaskFailed, ...]:
    common: dict[str, Any] = {"workflow": workflow, "version": 1, "task_type": "shipping.ship"}
    return (
        TaskSucceeded(
            **common,
            command_id="w:ship:1",
            task_id="ship",
            attempt=1,
            output={"tracking": "T-1"},
            mode=Mode.CHOREOGRAPHY,
        ),
        TaskFailed(
            **common,
            command_id="w:ship:2",
            task_id="ship",
            attempt=2,
            error=ErrorInfo(type="ServiceError", message="down", retryable=True),
            compensation=False,
        ),
    )


def conductor_values() -> list[bytes]:
    values: list[bytes] = []
    for name in sorted(p.stem for p in GOLDEN.glob("*.json")):
        for observed in (False, True):
            mode = Mode.CHOREOGRAPHY if observed else Mode.ORCHESTRATION
            states = replay(name, observed=observed)
            # every state of one history, the last of the others
            for number, state in enumerate(states):
                if name != "order_compensated" and number != len(states) - 1:
                    continue
                held: dict[str, Any] = {}
                if observed and number == 1:
                    held[state.workflow_id] = (0, list(outcomes(state.name)))
                values.append(_conductor(state.workflow_id, {state.workflow_id: state}, mode, held))
                if state.status in TERMINAL:
                    ended = {state.workflow_id: EndedRecord.of(0, mode, result_of(state, mode))}
                    values.append(_conductor(state.workflow_id, {}, mode, {}, ended))
    # outcomes held before the trigger was seen
    values.append(_conductor("early", {}, Mode.CHOREOGRAPHY, {"early": (3, list(outcomes("x")))}))
    return values


def _conductor(
    workflow_id: str,
    states: dict[str, WorkflowState],
    mode: Mode,
    held: dict[str, Any],
    ended: dict[str, EndedRecord] | None = None,
) -> bytes:
    fake = SimpleNamespace(
        _workflows={w: (0, mode, s) for w, s in states.items()}, _held=held, _ended=ended or {}
    )
    value = Conductor.snapshot(fake, workflow_id)  # type: ignore[arg-type]
    assert value is not None
    return value


def participant_values() -> list[bytes]:
    joins = [
        Join(workflow_id="w1", name="order", version=1, tasks={"charge": Mine()}),
        Join(
            workflow_id="w2",
            name="order",
            version=1,
            input={"sku": "A-1", "qty": 2, "amount": 19.5},
            seen={"reserve": (S.SUCCEEDED, {"reservation_id": "R1"})},
            tasks={"charge": Mine(status=S.RUNNING, attempt=1, input={"amount": 19.5})},
            compensations={"charge": Mine()},
        ),
        Join(
            workflow_id="w3",
            name="order",
            version=1,
            input={"sku": "A-1", "qty": 2, "amount": 19.5},
            seen={"reserve": (S.SUCCEEDED, {"reservation_id": "R1"})},
            tasks={
                "charge": Mine(status=S.RETRYING, attempt=2, input={"amount": 19.5}, retry_due=12.5)
            },
        ),
        Join(
            workflow_id="w4",
            name="order",
            version=1,
            input={"sku": "A-1", "qty": 2, "amount": 19.5},
            seen={
                "reserve": (S.SUCCEEDED, {"reservation_id": "R1"}),
                "charge": (S.SUCCEEDED, {"charge_id": "C1"}),
                "ship": (S.FAILED, None),
            },
            tasks={"charge": Mine(status=S.SUCCEEDED, attempt=1, input={"amount": 19.5})},
            compensations={
                "charge": Mine(status=S.SUCCEEDED, attempt=2, input={"charge_id": "C1"}),
                "reserve": Mine(status=S.RUNNING, attempt=1, input={"reservation_id": "R1"}),
            },
            undone={"charge": S.SUCCEEDED},
            failed=True,
        ),
    ]
    values = [
        _participant(j.workflow_id, {j.workflow_id: (0, Mode.CHOREOGRAPHY, j)}, {}) for j in joins
    ]
    values.append(_participant("w5", {}, {"w5": (0, 1764470000.25)}))
    return values


def _participant(
    workflow_id: str, joins: dict[str, tuple[int, Mode, Join]], ended: dict[str, tuple[int, float]]
) -> bytes:
    fake = SimpleNamespace(_joins=joins, _ended=ended)
    value = Participant.snapshot(fake, workflow_id)  # type: ignore[arg-type]
    assert value is not None
    return value


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, values in (
        ("conductor", conductor_values()),
        ("participant", participant_values()),
    ):
        assert all(b"\n" not in v for v in values)
        (out / f"{name}.jsonl").write_bytes(b"".join(v + b"\n" for v in values))
        print(f"{out / name}.jsonl: {len(values)} values")


if __name__ == "__main__":
    main()
