"""on_complete in both modes: a chained start under a derived id, the result published."""

from __future__ import annotations

import asyncio

import orjson

from podium.client import result_json
from podium.workflow.triggers import end_id
from tests.e2e.conftest import Deployment
from tests.triggers.conftest import records_of


async def test_a_success_starts_the_next_workflow_and_publishes_its_result(
    deployment: Deployment,
) -> None:
    first = await deployment.start("hand_on", {"n": 1, "fail": False})
    ended = await deployment.wait(first)
    assert ended.state == "Succeeded"
    handed = await deployment.wait(end_id(first, 0))
    assert (handed.workflow, handed.mode, handed.output) == ("handed", deployment.mode, {"n": 2})
    address = deployment.client.bootstrap_servers
    await asyncio.sleep(0.05)  # the record went out with the end's batch
    published = [
        r
        for r in await records_of(address, "test.results", deployment.settings)
        if r.key == first.encode()
    ]
    assert len(published) == 1
    assert orjson.loads(published[0].value) == orjson.loads(orjson.dumps(result_json(first, ended)))
    headers = dict(published[0].headers)
    assert headers["ce_id"] == end_id(first, 1).encode()
    assert headers["ce_type"] == b"podium.workflow.result"
    failures = await records_of(address, "test.failures", deployment.settings)
    assert not [r for r in failures if r.key == first.encode()]


async def test_a_failure_takes_its_own_branch(deployment: Deployment) -> None:
    first = await deployment.start("hand_on", {"n": 1, "fail": True})
    ended = await deployment.wait(first)
    assert ended.state == "Failed"
    address = deployment.client.bootstrap_servers
    await asyncio.sleep(0.05)
    failures = [
        r
        for r in await records_of(address, "test.failures", deployment.settings)
        if r.key == first.encode()
    ]
    assert [orjson.loads(r.value)["state"] for r in failures] == ["Failed"]


async def test_a_repeated_end_starts_nothing_again(deployment: Deployment) -> None:
    first = await deployment.start("hand_on", {"n": 5, "fail": False})
    await deployment.wait(first)
    await deployment.wait(end_id(first, 0))
    # the same trigger again: the end is re-announced, on_complete does not run again
    deployment.client._waiting.pop(first, None)
    await deployment.client.trigger(
        deployment.catalog.get("hand_on"),
        {"n": 5, "fail": False},
        workflow_id=first,
        mode=deployment.mode,
    )
    await deployment.wait(first)
    await asyncio.sleep(0.1)
    address = deployment.client.bootstrap_servers
    published = [
        r
        for r in await records_of(address, "test.results", deployment.settings)
        if r.key == first.encode()
    ]
    assert len(published) == 1
