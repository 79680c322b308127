"""`podium api` as a real process over a real deployment on the embedded broker (tansu):
httpx triggers, follows the change stream, cancels; schemathesis, from the served OpenAPI
document, finds no 5xx."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from podium import show
from podium.client import prepare_topics
from podium.events import Mode
from podium.history.database import Database
from podium.history.recorder import Recorder
from podium.oneshot import build_parts
from podium.workflow.catalog import Catalog
from podium.workflow.loader import load_definitions
from tests.api.conftest import FLOWS, eventually
from tests.conftest import Brokers, settings_for
from tests.e2e import services as test_services
from tests.processes.procs import Proc

pytestmark = pytest.mark.integration

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def kafka(brokers: Brokers) -> str:
    return brokers.get("embedded")


@pytest.fixture(scope="module")
def history_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('served') / 'history.db'}"


@pytest.fixture(scope="module")
async def deployment(kafka: str, history_url: str) -> AsyncIterator[None]:
    """Workers, a conductor and a history store, in this process, on the broker."""
    settings = settings_for(kafka)
    catalog = Catalog(load_definitions(FLOWS).values())
    await prepare_topics(kafka, settings, catalog.task_types)
    parts: list[Any] = [
        *build_parts(catalog, test_services.services, kafka, settings, Mode.ORCHESTRATION),
        Recorder(catalog, kafka, settings, Database(history_url)),
    ]
    tasks = [asyncio.create_task(part.run()) for part in parts]
    try:
        await asyncio.wait_for(asyncio.gather(*(p.ready.wait() for p in parts)), 60)
        yield
    finally:
        for part in parts:
            part.stop()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture(scope="module")
def served(kafka: str, history_url: str) -> Iterator[str]:
    """The base URL of a `podium api` process (a free port, token required to mutate)."""
    env = {
        "PODIUM_BOOTSTRAP_SERVERS": kafka,
        "PODIUM_HISTORY_URL": history_url,
        "PODIUM_DEFINITIONS": str(FLOWS),
        "PODIUM_API_TOKEN": TOKEN,
    }
    with Proc(["api", "--port", "0"], env) as proc:
        proc.wait_ready(30)
        (line,) = [line for line in proc.lines if "API on" in line]
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match is not None, line
        yield f"http://127.0.0.1:{match[1]}"
        assert proc.terminate() == 0


async def test_trigger_follow_the_stream_and_cancel_over_http(
    deployment: None, served: str, history_url: str
) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    async with httpx.AsyncClient(base_url=served, timeout=10) as http:
        listening = asyncio.create_task(_listen(http, events))
        await eventually(_ready(events))
        trigger = {"workflow": "chain", "input": {"sleep": 0}}
        assert (await http.post("/api/workflows", json=trigger)).status_code == 401
        response = await http.post("/api/workflows", json=trigger, headers=AUTH)
        assert response.status_code == 202, response.text
        done = response.json()["workflow_id"]

        slow = {"workflow": "cancel_saga", "input": {"sleep": 2}}
        cancelled = (await http.post("/api/workflows", json=slow, headers=AUTH)).json()
        workflow_id = cancelled["workflow_id"]
        await eventually(_attempt_running(http, workflow_id, "slow"), 20)
        response = await http.post(f"/api/workflows/{workflow_id}/cancel", headers=AUTH)
        assert response.status_code == 202, response.text

        ended = await eventually(_ended(http, done), 20)
        assert ended["state"] == "Succeeded" and ended["output"] == {"last": 5}
        database = Database(history_url)
        try:
            assert ended["result"] == await show.status(database, done)
        finally:
            await database.close()
        assert (await eventually(_ended(http, workflow_id), 20))["state"] == "Cancelled"
        # the stream told of both, up to their ends
        await eventually(_told(events, done, "Succeeded"), 5)
        await eventually(_told(events, workflow_id, "Cancelled"), 5)
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
        metrics = await http.get("/metrics", follow_redirects=False)
        assert metrics.status_code == 200


async def test_podium_cancel_stops_a_running_workflow(
    deployment: None, served: str, kafka: str, history_url: str
) -> None:
    env = {**os.environ, "PODIUM_BOOTSTRAP_SERVERS": kafka, "PODIUM_HISTORY_URL": history_url}

    async def podium(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "podium", *args, env=env, stdout=PIPE, stderr=PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    async with httpx.AsyncClient(base_url=served, timeout=10) as http:
        slow = {"workflow": "cancel_plain", "input": {"sleep": 3}}
        workflow_id = (await http.post("/api/workflows", json=slow, headers=AUTH)).json()[
            "workflow_id"
        ]
        await eventually(_attempt_running(http, workflow_id, "slow"), 20)
    code, out, err = await podium("cancel", workflow_id, "--reason", "by hand", "--wait", "--json")
    assert code == 0, err
    result = orjson.loads(out)
    assert result["state"] == "Cancelled" and result["error"]["message"] == "by hand"
    code, _, err = await podium("cancel", workflow_id)
    assert code == 1 and "has ended: Cancelled" in err
    code, _, err = await podium("cancel", "no-such-workflow")
    assert code == 1 and "no workflow 'no-such-workflow'" in err


# schemathesis draws with `random` inside its strategies, which Hypothesis deprecates
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
async def test_the_served_openapi_document_leads_to_no_server_error(served: str) -> None:
    errors: list[str] = []

    def run() -> None:  # schemathesis calls the API with requests: in a thread
        schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
        paths = set(orjson.loads(httpx.get(f"{served}/openapi.json").content)["paths"])
        assert "/api/workflows/{workflow_id}/cancel" in paths and "/metrics" in paths
        schema = schema.exclude(path="/api/events")  # a stream that does not end
        for result in schema.get_all_operations():
            operation = result.ok()

            @given(case=operation.as_strategy())
            @settings(
                max_examples=12,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                response = case.call(base_url=served, headers=AUTH, timeout=10)
                if response.status_code >= 500:
                    errors.append(f"{case.method} {case.formatted_path}: {response.status_code}")

            check()

    await asyncio.to_thread(run)
    assert not errors, errors


async def _listen(http: httpx.AsyncClient, events: list[tuple[str, dict[str, Any]]]) -> None:
    async with http.stream("GET", "/api/events", timeout=None) as stream:
        name = "message"
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                name = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                events.append((name, orjson.loads(line.removeprefix("data:"))))


def _ready(events: list[tuple[str, dict[str, Any]]]) -> Any:
    async def check() -> bool:
        return any(name == "ready" for name, _ in events)

    return check


def _told(events: list[tuple[str, dict[str, Any]]], workflow_id: str, state: str) -> Any:
    async def check() -> bool:
        return any(
            name == "workflow" and e["workflow_id"] == workflow_id and e["state"] == state
            for name, e in events
        )

    return check


def _ended(http: httpx.AsyncClient, workflow_id: str) -> Any:
    async def check() -> dict[str, Any] | None:
        response = await http.get(f"/api/workflows/{workflow_id}")
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 and body["ended_at"] else None

    return check


def _attempt_running(http: httpx.AsyncClient, workflow_id: str, task_id: str) -> Any:
    async def check() -> bool:
        response = await http.get(f"/api/workflows/{workflow_id}")
        if response.status_code != 200:
            return False
        return any(a["task_id"] == task_id for a in response.json()["attempts"])

    return check
