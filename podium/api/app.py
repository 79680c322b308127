"""`podium api`: the history store over HTTP (FastAPI), trigger and cancel, the dashboard.

Reads come from the history database alone: no definitions and no Kafka are
needed to serve what is recorded. Triggering needs the definitions (the same
validation as `podium trigger`); triggering and cancelling need Kafka
(`publisher.Publisher`). With `PODIUM_API_TOKEN` set, the mutating endpoints
want `Authorization: Bearer <token>`. A bad request gets a 4xx with a reason in
`detail`; an unreachable database or broker a 503.

    GET  /api/workflows               list: filters, paging, counts by state
    GET  /api/workflows/{id}          one workflow: tasks, attempts, transitions, result, DAG
    POST /api/workflows               trigger (Idempotency-Key: the same request, the same id)
    POST /api/workflows/{id}/cancel   cancel
    GET  /api/definitions             the definitions known (recorded, and --definitions)
    GET  /api/events                  server-sent events: workflows that changed
    GET  /metrics                     Prometheus
    GET  /                            the dashboard (`static/`), when installed
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from podium.api.changes import Changes
from podium.api.models import Problem
from podium.api.publisher import Publisher, Refused
from podium.api.routes import Api, router
from podium.history.database import Database, HistoryError
from podium.runtime.settings import Settings
from podium.workflow.catalog import Catalog

STATIC = Path(__file__).parent / "static"


def create_app(
    database: Database,
    settings: Settings,
    *,
    catalog: Catalog | None = None,
    token: str | None = None,
) -> FastAPI:
    """The API over `database`; with `catalog`, it triggers; with `settings.bootstrap_servers`,
    it publishes; with `token`, the mutating endpoints want it as a bearer token."""
    types = catalog.task_types if catalog is not None else set()
    api = Api(
        database=database,
        settings=settings,
        catalog=catalog,
        token=token or None,
        publisher=Publisher(settings.bootstrap_servers, settings, types),
        changes=Changes(database),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await api.changes.close()
            await api.publisher.close()
            await database.close()

    app = FastAPI(
        title="Podium",
        summary="Workflows over Kafka: what is recorded; trigger and cancel.",
        version="1",
        lifespan=lifespan,
        responses={503: {"model": Problem}},
    )
    app.state.api = api
    app.add_exception_handler(HistoryError, _history_error)
    app.add_exception_handler(Refused, _refused)
    app.include_router(router)
    if (STATIC / "index.html").is_file():
        app.mount("/", StaticFiles(directory=STATIC, html=True), name="dashboard")
    return app


async def _history_error(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"history: {error}"}, status_code=503)


async def _refused(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, Refused)
    return JSONResponse({"detail": error.reason}, status_code=error.status)
