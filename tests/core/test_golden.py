"""Golden histories: recorded events replayed through ``decide`` reproduce the recorded commands.

Recorded by ``python tests/golden/record.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from podium.workflow.loader import load_definition
from podium.workflow.machine import WorkflowState, command_adapter, decide, event_adapter

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = sorted((ROOT / "tests" / "golden").glob("*.json"))


def test_there_are_golden_histories() -> None:
    assert len(GOLDEN) >= 4


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_replay_reproduces_recorded_commands(path: Path) -> None:
    recording: dict[str, Any] = json.loads(path.read_text())
    definition = load_definition(ROOT / recording["definition"])
    state: WorkflowState | None = None
    for number, step in enumerate(recording["steps"]):
        event = event_adapter.validate_python(step["event"])
        state, commands = decide(definition, state, event, step["now"])
        produced = [command_adapter.dump_python(c, mode="json") for c in commands]
        assert produced == step["commands"], f"step {number}: {step['event']}"
        # Commands decoded from the recording equal the live ones, too.
        assert [command_adapter.validate_python(c) for c in step["commands"]] == commands
    assert state is not None
    assert state.model_dump(mode="json") == recording["final_state"]
    assert WorkflowState.model_validate(recording["final_state"]) == state
