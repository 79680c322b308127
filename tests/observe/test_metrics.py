"""What the metrics count in one process (the roles' endpoints: `test_roles.py`)."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

from podium import metrics
from podium.events import Mode
from podium.oneshot import run_once
from podium.runtime import memory
from podium.runtime.outbox import Outbox, handle
from podium.runtime.settings import Settings
from tests.e2e import services as test_services
from tests.observe.test_traces import TRACED
from tests.test_handle import _record


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("mode", list(Mode))
async def test_attempts_and_the_workflow_s_end_are_counted(mode: Mode) -> None:
    step = {"task_type": "test.step", "mode": str(mode)}
    traced = {"workflow": "traced", "mode": str(mode)}
    before = {
        "failed": _value("podium_task_attempts_total", **step, outcome="failed"),
        "succeeded": _value("podium_task_attempts_total", **step, outcome="succeeded"),
        "timed": _value("podium_task_duration_seconds_count", **step),
        "queued": _value("podium_task_queued_seconds_count", **step),
        "started": _value("podium_workflows_started_total", **traced),
        "ended": _value("podium_workflows_ended_total", **traced, state="Compensated"),
    }
    address = f"memory://{uuid.uuid4().hex}"
    try:
        await run_once(
            TRACED,
            test_services.services,
            {},
            bootstrap_servers=address,
            settings=Settings(bootstrap_servers=address),
            mode=mode,
            timeout=30,
        )
    finally:
        memory.drop(address)
    # a: failed then succeeded; b: failed for good
    assert _value("podium_task_attempts_total", **step, outcome="failed") == before["failed"] + 2
    assert _value("podium_task_attempts_total", **step, outcome="succeeded") == (
        before["succeeded"] + 1
    )
    assert _value("podium_task_duration_seconds_count", **step) == before["timed"] + 3
    assert _value("podium_task_queued_seconds_count", **step) == before["queued"] + 3
    assert _value("podium_workflows_started_total", **traced) == before["started"] + 1
    ended = _value("podium_workflows_ended_total", **traced, state="Compensated")
    assert ended == before["ended"] + 1


def test_a_dead_letter_is_counted_by_the_topic_it_came_from() -> None:
    before = _value("podium_dead_letters_total", topic="podium.triggers")
    outbox = Outbox(memory.MemoryProducer("memory://unused"), "podium.test.changelog")
    handle(_record(b"not json", [("ce_type", b"x")]), lambda p, e: None, outbox)
    assert _value("podium_dead_letters_total", topic="podium.triggers") == before + 1


def test_lag_is_read_only_while_metrics_are_served(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []

    def read() -> dict[str, int]:
        reads.append(1)
        return {"podium.triggers": 7} if len(reads) == 1 else {}

    lag = metrics.Lag("podium.test", read)
    lag.tick()
    assert reads == []  # nobody scrapes: nothing read
    monkeypatch.setattr(metrics, "_serving", True)
    lag.tick()
    lag.tick()  # within the second: not read again
    assert reads == [1]
    assert _value("podium_consumer_lag", group="podium.test", topic="podium.triggers") == 7
    lag._next = 0.0
    lag.tick()  # the topic is no longer assigned here
    assert _value("podium_consumer_lag", group="podium.test", topic="podium.triggers") == 0
