"""The HTTP API in-process over a deployment on the in-memory bus: reads of what the history
store recorded, trigger (with an Idempotency-Key) and cancel in both modes, bad requests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from podium import show
from podium.api import create_app
from podium.history.database import Database
from podium.runtime.settings import Settings
from tests.api.conftest import Stack, client, eventually
from tests.e2e.services import CALLS

MODES = ["orchestration", "choreography"]


def running(workflow_id: str, task_id: str) -> Callable[[], Awaitable[bool]]:
    """Whether the task's handler has been called."""

    async def check() -> bool:
        return any(c[0] == workflow_id and c[1] == task_id for c in CALLS)

    return check


@pytest.mark.parametrize("mode", MODES)
async def test_a_triggered_workflow_reads_back_whole(stack: Stack, mode: str) -> None:
    workflow_id = await stack.trigger({"workflow": "saga", "mode": mode})
    body = await stack.ended(workflow_id)
    assert (body["workflow_id"], body["workflow"], body["mode"]) == (workflow_id, "saga", mode)
    assert body["state"] == "Compensated"
    # the result is exactly what `podium status --json` prints
    assert body["result"] == await show.status(stack.database, workflow_id)
    assert body["tasks"] == body["result"]["tasks"]
    assert [n["id"] for n in body["dag"]["nodes"]] == ["a", "b", "c"]
    assert body["dag"]["nodes"][1] == {
        "id": "b",
        "type": "test.step",
        "depends_on": ["a"],
        "when": None,
        "compensate": "test.undo",
    }
    assert {"from": "b", "to": "c"} in body["dag"]["edges"]
    attempts = {(a["task_id"], a["compensation"]): a for a in body["attempts"]}
    assert set(attempts) == {("a", False), ("b", False), ("c", False), ("a", True), ("b", True)}
    undo = attempts[("b", True)]
    assert (undo["attempt"], undo["state"], undo["task_type"]) == (1, "Succeeded", "test.undo")
    assert undo["input"] == {"undo": "b"} and undo["output"] == {"undone": "b"}
    assert undo["started_at"] and undo["ended_at"] and undo["duration_s"] >= 0
    assert attempts[("c", False)]["error"]["type"] == "TaskError"
    states = [(t["task_id"], t["to_state"]) for t in body["transitions"]]
    assert states[0] == (None, "Running") and states[-1] == (None, "Compensated")
    assert ("c", "Failed") in states


async def test_the_list_filters_pages_and_counts(stack: Stack) -> None:
    ids = [await stack.trigger({"workflow": "chain", "input": {"sleep": 0}}) for _ in range(3)]
    failed = await stack.trigger({"workflow": "fatal"})
    for workflow_id in [*ids, failed]:
        await stack.ended(workflow_id)

    async def listed(**params: Any) -> dict[str, Any]:
        response = await stack.http.get("/api/workflows", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    chain = await listed(name="chain")
    assert [w["workflow_id"] for w in chain["workflows"]] == ids[::-1]  # newest first
    assert chain["total"] == 3 and chain["counts"] == {"Succeeded": 3}
    page = await listed(name="chain", limit=2, offset=1)
    assert [w["workflow_id"] for w in page["workflows"]] == ids[1::-1]
    assert page["total"] == 3
    everything = await listed()
    assert everything["counts"]["Failed"] >= 1
    assert everything["total"] == sum(everything["counts"].values())
    failures = await listed(state="Failed")
    assert failed in [w["workflow_id"] for w in failures["workflows"]]
    assert failures["total"] == everything["counts"]["Failed"]
    assert failures["counts"] == everything["counts"]  # the tabs: other filters only
    assert (await listed(name="chain", mode="choreography"))["total"] == 0
    started = chain["workflows"][-1]["started_at"]
    assert (await listed(name="chain", since=started))["total"] == 3
    assert (await listed(name="chain", until=started))["total"] == 0
    assert (await listed(name="chain", since="2999-01-01T00:00:00Z"))["workflows"] == []


async def test_an_idempotency_key_gives_one_workflow_id_and_one_run(stack: Stack) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"workflow": "chain", "input": {"sleep": 0}}
    first = await stack.trigger(body, headers=key)
    assert await stack.trigger(body, headers=key) == first
    await stack.ended(first)
    assert await stack.trigger(body, headers=key) == first  # after its end too
    other = await stack.http.post(
        "/api/workflows", json={**body, "mode": "choreography"}, headers=key
    )
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    await asyncio.sleep(0.2)
    assert [c for c in CALLS if c[0] == first and c[1] == "s1"] == [(first, "s1", 1, False)]


@pytest.mark.parametrize("mode", MODES)
async def test_a_cancel_through_the_api_ends_the_workflow_cancelled(
    stack: Stack, mode: str
) -> None:
    body = {"workflow": "cancel_saga", "mode": mode, "input": {"sleep": 0.3}}
    workflow_id = await stack.trigger(body)
    await eventually(running(workflow_id, "slow"))
    response = await stack.http.post(
        f"/api/workflows/{workflow_id}/cancel", json={"reason": "not needed"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["cancel"] == "requested"
    ended = await stack.ended(workflow_id)
    assert ended["state"] == "Cancelled"
    assert ended["error"] == {"type": "Cancelled", "message": "not needed", "retryable": False}
    undone = sorted(a["task_id"] for a in ended["attempts"] if a["compensation"])
    assert undone == ["a", "slow"]
    story = [(t["task_id"], t["to_state"], t["compensation"]) for t in ended["transitions"]]
    workflow = [state for task, state, _ in story if task is None]
    assert workflow == ["Running", "Compensating", "Cancelled"]
    first_undo = next(i for i, (_, _, undo) in enumerate(story) if undo)
    assert story.index((None, "Compensating", False)) < first_undo
    again = await stack.http.post(f"/api/workflows/{workflow_id}/cancel")
    assert again.status_code == 409 and "Cancelled" in again.json()["detail"]


BAD = [
    ("GET", "/api/workflows/no-such-id", {}, 404),
    ("POST", "/api/workflows/no-such-id/cancel", {}, 404),
    ("GET", "/api/workflows?state=Bogus", {}, 422),
    ("GET", "/api/workflows?mode=both", {}, 422),
    ("GET", "/api/workflows?since=yesterday", {}, 422),
    ("GET", "/api/workflows?limit=0", {}, 422),
    ("GET", "/api/workflows?limit=abc", {}, 422),
    ("GET", "/api/workflows?offset=-1", {}, 422),
    (
        "POST",
        "/api/workflows",
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        422,
    ),
    ("POST", "/api/workflows", {"json": ["chain"]}, 422),
    ("POST", "/api/workflows", {"json": {"workflow": 3}}, 422),
    ("POST", "/api/workflows", {"json": {"workflow": "chain", "input": [1]}}, 422),
    ("POST", "/api/workflows", {"json": {"workflow": "chain", "version": "x"}}, 422),
    ("POST", "/api/workflows", {"json": {"workflow": "chain", "surprise": 1}}, 422),
    ("POST", "/api/workflows", {"json": {"workflow": "chain", "id": "a/b"}}, 422),
    ("POST", "/api/workflows", {"json": {"workflow": "nope"}}, 422),
    ("POST", "/api/workflows", {"json": {"workflow": "chain", "version": 9}}, 422),
    ("POST", "/api/workflows/x/cancel", {"json": {"reason": 5}}, 422),
    ("DELETE", "/api/workflows", {}, 405),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), BAD)
async def test_a_bad_request_gets_a_4xx_with_a_reason(
    stack: Stack, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    response = await stack.http.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


async def test_an_input_the_schema_refuses_is_a_422_naming_the_problem(stack: Stack) -> None:
    response = await stack.http.post("/api/workflows", json={"workflow": "guarded", "input": {}})
    assert response.status_code == 422
    assert "input rejected for guarded" in response.json()["detail"]


async def test_definitions_openapi_metrics_and_the_dashboard(stack: Stack) -> None:
    definitions = (await stack.http.get("/api/definitions")).json()["definitions"]
    names = {(d["name"], d["version"]) for d in definitions}
    assert ("saga", 1) in names and ("cancel_saga", 1) in names
    saga = next(d for d in definitions if d["name"] == "saga")
    assert [n["id"] for n in saga["dag"]["nodes"]] == ["a", "b", "c"]
    paths = (await stack.http.get("/openapi.json")).json()["paths"]
    assert set(paths) == {
        "/api/workflows",
        "/api/workflows/{workflow_id}",
        "/api/workflows/{workflow_id}/cancel",
        "/api/definitions",
        "/api/events",
        "/metrics",
    }
    metrics = await stack.http.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    home = await stack.http.get("/")
    assert home.status_code == 200 and "<html" in home.text.lower()


async def test_a_token_guards_the_mutating_endpoints_only(stack: Stack) -> None:
    app = create_app(Database(stack.history_url), stack.settings, catalog=stack.catalog, token="s3")
    async with app.router.lifespan_context(app), client(app) as http:
        body = {"workflow": "chain", "input": {"sleep": 0}}
        assert (await http.post("/api/workflows", json=body)).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await http.post("/api/workflows", json=body, headers=wrong)).status_code == 401
        assert (await http.post("/api/workflows/x/cancel", headers=wrong)).status_code == 401
        right = {"Authorization": "Bearer s3"}
        assert (await http.post("/api/workflows", json=body, headers=right)).status_code == 202
        assert (await http.get("/api/workflows")).status_code == 200


async def test_reads_need_neither_definitions_nor_kafka(stack: Stack) -> None:
    app = create_app(Database(stack.history_url), Settings())
    async with app.router.lifespan_context(app), client(app) as http:
        listed = (await http.get("/api/workflows")).json()
        assert listed["total"] > 0
        one = listed["workflows"][0]["workflow_id"]
        assert (await http.get(f"/api/workflows/{one}")).status_code == 200
        refused = await http.post("/api/workflows", json={"workflow": "chain"})
        assert refused.status_code == 400 and "--definitions" in refused.json()["detail"]
        running = await stack.trigger({"workflow": "cancel_saga", "input": {"sleep": 1}})

        async def recorded() -> bool:
            return (await http.get(f"/api/workflows/{running}")).status_code == 200

        await eventually(recorded)
        cancel = await http.post(f"/api/workflows/{running}/cancel")
        assert cancel.status_code == 400 and "--bootstrap-servers" in cancel.json()["detail"]
    await stack.ended(running)
