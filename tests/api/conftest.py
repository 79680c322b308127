"""A deployment of both styles side by side on the in-memory bus, its history store,
and the API over that history, called in-process (httpx over ASGI)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from podium.api import create_app
from podium.client import prepare_topics
from podium.events import Mode
from podium.history.database import Database
from podium.history.recorder import Recorder
from podium.oneshot import build_parts
from podium.runtime import memory
from podium.runtime.settings import Settings
from podium.workflow.catalog import Catalog
from podium.workflow.loader import load_definitions
from tests.e2e import services as test_services

FLOWS = Path(__file__).parents[1] / "e2e" / "flows"
ENDED = {"Succeeded", "Failed", "Compensated", "Cancelled", "TimedOut"}


@dataclass
class Stack:
    app: FastAPI
    http: httpx.AsyncClient
    database: Database
    settings: Settings
    catalog: Catalog
    history_url: str

    async def trigger(self, body: dict[str, Any], **kwargs: Any) -> str:
        response = await self.http.post("/api/workflows", json=body, **kwargs)
        assert response.status_code == 202, response.text
        workflow_id: str = response.json()["workflow_id"]
        return workflow_id

    async def ended(self, workflow_id: str, timeout: float = 15) -> dict[str, Any]:
        """The workflow as the API shows it, once its end is recorded."""

        async def end() -> dict[str, Any] | None:
            response = await self.http.get(f"/api/workflows/{workflow_id}")
            ok = response.status_code == 200 and response.json()["state"] in ENDED
            return response.json() if ok else None

        body: dict[str, Any] = await eventually(end, timeout)
        return body


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10) -> Any:
    """`check()`'s first true value, polled."""
    async with asyncio.timeout(timeout):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.01)


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    address = f"memory://api-{id(tmp_path_factory)}"
    settings = Settings(bootstrap_servers=address)
    catalog = Catalog(load_definitions(FLOWS).values())
    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'history.db'}"
    await prepare_topics(address, settings, catalog.task_types)
    parts: list[Any] = [
        *build_parts(catalog, test_services.services, address, settings, Mode.ORCHESTRATION),
        *build_parts(catalog, test_services.services, address, settings, Mode.CHOREOGRAPHY),
        Recorder(catalog, address, settings, Database(url)),
    ]
    tasks = [asyncio.create_task(part.run()) for part in parts]
    app = create_app(Database(url), settings, catalog=catalog)
    try:
        await asyncio.wait_for(asyncio.gather(*(p.ready.wait() for p in parts)), 30)
        async with app.router.lifespan_context(app), client(app) as http:
            yield Stack(app, http, app.state.api.database, settings, catalog, url)
    finally:
        for part in parts:
            part.stop()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        memory.drop(address)
    crashed = [r for r in results if isinstance(r, BaseException)]
    assert not crashed, crashed
