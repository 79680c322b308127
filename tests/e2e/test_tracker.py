"""The tracker, watching an orchestrated run, reaches the conductor's states."""

from __future__ import annotations

import pytest

from conductor.conductor import Conductor
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
    assert (conductor.role.name, tracker.role.name) == ("conductor", "tracker")
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
