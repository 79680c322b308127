"""Cancel in both modes, on the in-memory bus: no new attempt, a saga undoes, the end is Cancelled.

The cancel lands while the `slow` task's handler sleeps; its dependent `after` must
never run. In orchestration the conductor takes the cancel (and the tracker beside
it follows); in choreography the tracker takes it and the participants follow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from podium.client import Client
from podium.runtime import memory
from podium.workflow.states import WorkflowStatus
from tests.e2e.conftest import Deployment
from tests.e2e.services import CALLS

SLEEP = 0.4


@pytest.fixture(scope="module")
def transport(request: pytest.FixtureRequest) -> Iterator[str]:
    """The in-memory bus only: the cancel's rules are the same on every broker."""
    address = f"memory://{request.module.__name__}"
    yield address
    memory.drop(address)


def calls(workflow_id: str) -> list[tuple[str, int, bool]]:
    return [(task, attempt, undo) for wid, task, attempt, undo in CALLS if wid == workflow_id]


async def running(workflow_id: str, task_id: str, timeout: float = 10) -> None:
    """Until the task's handler has been called."""
    await _until(lambda: any(task == task_id for task, _, _ in calls(workflow_id)), timeout)


async def cancel_mid_run(deployment: Deployment, name: str) -> str:
    workflow_id = await deployment.start(name, {"sleep": SLEEP})
    await running(workflow_id, "slow")
    await deployment.client.cancel(workflow_id, name, 1, reason="changed my mind")
    return workflow_id


async def test_a_cancelled_saga_undoes_what_succeeded_and_ends_cancelled(
    deployment: Deployment,
) -> None:
    workflow_id = await cancel_mid_run(deployment, "cancel_saga")
    ended = await deployment.wait(workflow_id)
    assert ended.state == "Cancelled"
    assert ended.error is not None
    assert (ended.error.type, ended.error.message) == ("Cancelled", "changed my mind")
    states = {task_id: task.state for task_id, task in ended.tasks.items()}
    # slow was running: it is awaited, and its late success undone too
    assert (states["a"], states["slow"]) == ("Succeeded", "Succeeded")
    after = ended.tasks["after"]
    if deployment.mode == "orchestration":
        assert after.state == "Pending"
    else:  # its participant declines it and says so, as after a failure
        assert after.state == "Failed" and after.error is not None
        assert after.error.type == "NotStarted"
    ran = calls(workflow_id)
    assert ran[:2] == [("a", 1, False), ("slow", 1, False)] and len(ran) == 4  # not after
    undone = [task for task, _, undo in ran if undo]
    if deployment.mode == "orchestration":
        assert undone == ["slow", "a"]  # reverse completion order, one at a time
    else:  # a participant undoes a task once its Succeeded dependents are undone: slow
        assert sorted(undone) == ["a", "slow"]  # had not succeeded yet when a was undone
    tracker = deployment.parts[-1]
    await _until(lambda: tracker.state_of(workflow_id) is not None)
    assert tracker.state_of(workflow_id).status is WorkflowStatus.CANCELLED


async def test_a_cancel_with_the_fail_policy_ends_at_once_and_starts_nothing(
    deployment: Deployment,
) -> None:
    workflow_id = await cancel_mid_run(deployment, "cancel_plain")
    ended = await deployment.wait(workflow_id)
    assert ended.state == "Cancelled"
    assert ended.tasks["after"].state == "Pending"
    await asyncio.sleep(SLEEP + 0.2)  # slow's handler ends: nothing starts after it
    assert calls(workflow_id) == [("a", 1, False), ("slow", 1, False)]


async def test_a_cancel_of_an_ended_workflow_answers_with_its_end(
    deployment: Deployment,
) -> None:
    workflow_id = await deployment.start("cancel_plain", {"sleep": 0})
    first = await deployment.wait(workflow_id)
    assert first.state == "Succeeded"
    async with Client(deployment.client.bootstrap_servers, deployment.settings) as client:
        again = client.expect(workflow_id)
        await client.cancel(workflow_id, "cancel_plain", 1)
        assert await asyncio.wait_for(again, 10) == first


async def _until(condition: Callable[[], bool], timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)
