"""The dashboard as a person sees it: a real deployment, the API, and a headless Chromium.

One deployment per mode, each on its own in-memory bus, in this process: the
task services of `gates.py` (a worker per service and the conductor, or a
participant per service and the tracker) and a history store writing to one
SQLite file, which the API app reads, served by uvicorn on a free loopback port.
The browser is Debian's `chromium`, driven by Playwright for Python (which
downloads no browser of its own here); without a chromium binary every test of
this folder skips, saying so. What the browser saw is saved as screenshots in
`tests/browser/screenshots/` (git-ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from podium.api import create_app
from podium.api.server import Server
from podium.client import Client, prepare_topics
from podium.events import Mode
from podium.history.database import Database
from podium.history.recorder import Recorder
from podium.oneshot import build_parts
from podium.runtime import memory
from podium.runtime.component import Component
from podium.runtime.settings import Settings
from podium.workflow.catalog import Catalog
from podium.workflow.loader import load_definition
from podium.workflow.machine import WorkflowState, cancelled
from tests.browser import gates

CHECKOUT = load_definition(Path(__file__).with_name("checkout.yaml"))
SCREENSHOTS = Path(__file__).with_name("screenshots")
#: where to look for the browser: $PODIUM_CHROMIUM, then Debian's and others' names
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str | None:
    named = os.environ.get("PODIUM_CHROMIUM")
    if named:
        return shutil.which(named)
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium (the system's binary, never one Playwright downloads)."""
    path = chromium()
    if path is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium; .ci/run does)")
    playwright = pytest.importorskip("playwright.async_api")
    async with playwright.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=path)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(browser: Any, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A page of its own per test; a browser-side error fails the test."""
    context = await browser.new_context(viewport={"width": 1360, "height": 1000})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        await context.close()
    assert not errors, errors


@dataclass
class Deployment:
    mode: Mode
    address: str
    client: Client
    #: workflow id -> set once its decider (conductor or tracker) has taken a cancel
    cancels: defaultdict[str, asyncio.Event]

    async def start(self, input: dict[str, Any]) -> str:
        return await self.client.trigger(CHECKOUT, input, mode=self.mode)


@dataclass
class Dashboard:
    url: str
    deployments: dict[Mode, Deployment]

    async def start(self, mode: Mode, input: dict[str, Any]) -> str:
        return await self.deployments[mode].start(input)

    async def cancel_taken(self, mode: Mode, workflow_id: str, timeout: float = 10) -> None:
        await asyncio.wait_for(self.deployments[mode].cancels[workflow_id].wait(), timeout)

    @staticmethod
    def open_gate(workflow_id: str, name: str) -> None:
        gates.open_gate(workflow_id, name)


@pytest.fixture(scope="module")
async def dashboard(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Dashboard]:
    """Both modes' deployments recording into one history, and the API serving it (it
    publishes cancels to the orchestration deployment's bus)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'history.db'}"
    async with contextlib.AsyncExitStack() as stack:
        deployments = {}
        for mode in Mode:
            deployments[mode] = await stack.enter_async_context(_deployment(mode, url))
        bus = deployments[Mode.ORCHESTRATION].address
        address = await stack.enter_async_context(_serve(url, bus))
        yield Dashboard(address, deployments)


@contextlib.asynccontextmanager
async def _deployment(mode: Mode, history_url: str) -> AsyncIterator[Deployment]:
    address = f"memory://browser-{mode.value}-{uuid.uuid4().hex[:8]}"
    settings = Settings(bootstrap_servers=address)
    catalog = Catalog([CHECKOUT])
    await prepare_topics(address, settings, catalog.task_types)
    cancels: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def on_state(state: WorkflowState) -> None:
        if cancelled(state):
            cancels[state.workflow_id].set()

    parts: list[Component] = build_parts(
        catalog, gates.services, address, settings, mode, on_state=on_state
    )
    parts.append(Recorder(catalog, address, settings, Database(history_url)))
    tasks = [asyncio.create_task(part.run()) for part in parts]
    try:
        await asyncio.wait_for(asyncio.gather(*(p.ready.wait() for p in parts)), 30)
        async with Client(address, settings) as client:
            yield Deployment(mode, address, client, cancels)
    finally:
        for part in parts:
            part.stop()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        memory.drop(address)
    crashed = [r for r in results if isinstance(r, BaseException)]
    assert not crashed, crashed


@contextlib.asynccontextmanager
async def _serve(history_url: str, bootstrap_servers: str) -> AsyncIterator[str]:
    """The API app as `podium api` serves it, in this process, on a free loopback port."""
    listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    app = create_app(Database(history_url), Settings(bootstrap_servers=bootstrap_servers))
    server = Server(app, "127.0.0.1", 0, on_ready=listening.set_result)
    serving = asyncio.create_task(server.serve())
    try:
        done, _ = await asyncio.wait({listening, serving}, return_when=asyncio.FIRST_COMPLETED)
        if serving in done:
            serving.result()
            raise RuntimeError("the API stopped before it listened")
        yield f"http://127.0.0.1:{listening.result()}/"
    finally:
        server.should_exit = True
        await serving
