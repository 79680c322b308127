"""The tracker, watching an orchestrated run, reaches the conductor's states."""

from __future__ import annotations

import pytest

from podium.conductor.conductor import Conductor
from podium.events import TaskSucceeded, encode, new_event, topics
from podium.runtime.kafka import make_producer
from tests.e2e.conftest import Deployment, tracked_end

pytestmark = pytest.mark.integration

CASES = [
    ("fanout", {"n": 3}),
    ("retry", {"fail_times": 2}),
    ("retry", {"fail_times": 7}),
    ("attempt_timeout", {}),
    ("skip", {"enrich": False}),
    ("fatal", {}),
    ("saga", {}),
]


@pytest.mark.parametrize("deployment", ["orchestration"], indirect=True)
async def test_tracker_view_equals_the_conductor_view(deployment: Deployment) -> None:
    conductor, tracker = [p for p in deployment.parts if isinstance(p, Conductor)]
    assert (conductor.name, tracker.name) == ("conductor", "tracker")
    for name, payload in CASES:
        workflow_id = await deployment.start(name, payload)
        await deployment.wait(workflow_id)
        await tracked_end(workflow_id)
        decided, seen = conductor.state_of(workflow_id), tracker.state_of(workflow_id)
        assert decided is not None and seen is not None
        assert (seen.status, seen.output) == (decided.status, decided.output), name
        assert {t: (s.status, s.attempts) for t, s in seen.tasks.items()} == {
            t: (s.status, s.attempts) for t, s in decided.tasks.items()
        }, name


@pytest.mark.parametrize("deployment", ["orchestration"], indirect=True)
async def test_tracker_applies_outcomes_that_arrive_out_of_order(
    deployment: Deployment, kafka: str
) -> None:
    """Outcome topics of different task types are not ordered among each other."""
    definition = deployment.catalog.get("observed")
    workflow_id = await deployment.client.trigger(definition, {"n": 1}, mode="choreography")
    producer = make_producer(kafka)
    await producer.start()
    try:
        # c's outcome first, then b's, then a's: each but the last waits for its upstream
        for task_id, task_type in [
            ("c", "test.other"),
            ("b", "test.external"),
            ("a", "test.external"),
        ]:
            outcome = TaskSucceeded(
                workflow="observed",
                version=1,
                command_id=f"{workflow_id}:{task_id}:1",
                task_id=task_id,
                task_type=task_type,
                attempt=1,
                output={"n": 7},
                mode="choreography",
            )
            event = new_event(outcome, source="test", workflow_id=workflow_id, task_id=task_id)
            record = encode(event)
            await producer.send_and_wait(
                topics.outcomes(task_type),
                value=record.value,
                key=record.key,
                headers=record.headers,
            )
    finally:
        await producer.stop()
    result = await deployment.wait(workflow_id)
    assert (result.state, result.mode, result.output) == ("Succeeded", "choreography", {"n": 7})
    assert {t: s.state for t, s in result.tasks.items()} == dict.fromkeys("abc", "Succeeded")
