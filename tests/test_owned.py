"""The owned-workflow map of the conductor and tracker: beyond `hot` decoded states the
least recently used wait as JSON, and come back equal."""

from __future__ import annotations

import pytest

from podium.events import Mode
from podium.runtime.owned import Owned
from podium.workflow.state import WorkflowState
from podium.workflow.states import WorkflowStatus


def state(n: int) -> WorkflowState:
    return WorkflowState(
        workflow_id=f"w{n}",
        name="chain",
        version=1,
        status=WorkflowStatus.RUNNING,
        input={"n": n, "items": list(range(n))},
        started_at=1_000.0 + n,
        seed=n,
    )


def test_cold_states_come_back_equal_and_hot_again() -> None:
    owned = Owned(hot=2, model=WorkflowState)
    for n in range(5):
        owned[f"w{n}"] = (n % 3, Mode.CHOREOGRAPHY, state(n))
    assert len(owned) == 5 and "w0" in owned and "nope" not in owned
    assert list(owned._decoded) == ["w3", "w4"]  # the two most recently set
    partition, mode, back = owned["w0"]
    assert (partition, mode, back) == (0, Mode.CHOREOGRAPHY, state(0))
    assert list(owned._decoded) == ["w4", "w0"]  # read back: hot again, w3 went cold
    assert sorted(owned.on({0})) == ["w0", "w3"]
    assert owned.pop("w1")[2] == state(1)
    del owned["w3"]  # a cold one
    del owned["w4"]  # a hot one
    assert len(owned) == 2 and owned.get("w3") is None
    with pytest.raises(KeyError):
        owned["w3"]


def test_at_least_the_state_being_decided_stays_decoded() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Owned(hot=0, model=WorkflowState)
