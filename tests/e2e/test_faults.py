"""Faults a handler causes, seen on the wire in both modes: the same prompt, clear ending."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Deployment
from tests.e2e.services import CALLS

pytestmark = pytest.mark.integration


async def test_an_output_larger_than_a_record_fails_the_task_at_once(
    deployment: Deployment,
) -> None:
    result = await deployment.run("oversized", {"size": 2_500_000})
    assert result.state == "Failed"
    big = result.tasks["big"]
    assert (big.state, big.attempts) == ("Failed", 1)  # not retried: it would be as large
    assert big.error is not None and big.error.type == "OutputTooLarge"
    assert "2,500,0" in big.error.message and "262,144" in big.error.message
    # the service lives on: the next workflow runs
    assert (await deployment.run("oversized", {"size": 10})).state == "Succeeded"


async def test_a_saga_undoes_a_success_that_arrives_after_the_failure(
    deployment: Deployment,
) -> None:
    workflow_id = await deployment.start("late_saga", {})
    result = await deployment.wait(workflow_id)
    assert result.state == "Compensated"
    assert (result.tasks["slow"].state, result.tasks["doomed"].state) == ("Succeeded", "Failed")
    # the undo ran before the end was announced, in both modes
    undone = [c for c in CALLS if c[0] == workflow_id and c[3]]
    assert undone == [(workflow_id, "slow", 1, True)]
