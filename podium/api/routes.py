"""The API's endpoints, each a function of the request and the app's `Api`."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.sse import EventSourceResponse, ServerSentEvent
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from podium.api.changes import Changes
from podium.api.models import (
    CancelAccepted,
    CancelRequest,
    Problem,
    Triggered,
    TriggerRequest,
    WorkflowList,
)
from podium.api.publisher import Publisher, Refused
from podium.client import result_json
from podium.events import Mode
from podium.history import views
from podium.history.database import Database
from podium.runtime.settings import Settings
from podium.workflow.catalog import Catalog, UnknownWorkflow
from podium.workflow.states import TERMINAL, WorkflowStatus

#: the largest page of the list
PAGE_MAX = 1000
INT_MAX = 2**31 - 1


@dataclass
class Api:
    """What the endpoints work with (one per app, in `app.state.api`)."""

    database: Database
    settings: Settings
    catalog: Catalog | None
    token: str | None
    publisher: Publisher
    changes: Changes


def _api(request: Request) -> Api:
    api: Api = request.app.state.api
    return api


State = Annotated[Api, Depends(_api)]
_bearer = HTTPBearer(auto_error=False, description="PODIUM_API_TOKEN, when it is set")


def _authorized(
    api: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    if api.token is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), api.token.encode()):
        raise HTTPException(
            401,
            "this endpoint wants Authorization: Bearer <PODIUM_API_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


MUTATING = [Depends(_authorized)]
REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 401, 404, 409, 422)
}
router = APIRouter()


# -- reads ------------------------------------------------------------------------------


@router.get("/api/workflows", response_model=WorkflowList, tags=["workflows"])
async def list_workflows(
    api: State,
    name: str | None = Query(None, max_length=200, description="A definition's name."),
    state: WorkflowStatus | None = None,
    mode: Mode | None = None,
    since: datetime | None = Query(None, description="Started at or after (ISO 8601)."),
    until: datetime | None = Query(None, description="Started before (ISO 8601)."),
    limit: int = Query(100, ge=1, le=PAGE_MAX),
    offset: int = Query(0, ge=0, le=INT_MAX),
) -> dict[str, Any]:
    """Recorded workflows, newest first; `counts` by state under the other filters."""
    filters: dict[str, Any] = {
        "name": name,
        "mode": mode,
        "since": _epoch(since),
        "until": _epoch(until),
    }
    database = api.database
    counts = await database.count(**filters)
    rows = await database.workflows(state=state, limit=limit, offset=offset, **filters)
    total = counts.get(state, 0) if state is not None else sum(counts.values())
    return {"workflows": [views.summary(r) for r in rows], "total": total, "counts": counts}


@router.get("/api/workflows/{workflow_id}", responses={404: {"model": Problem}}, tags=["workflows"])
async def get_workflow(api: State, workflow_id: str) -> dict[str, Any]:
    """One workflow: its tasks, attempts and transitions, its result once ended (what
    `podium status --json` prints), and its definition's DAG."""
    database = api.database
    workflow = await database.workflow(workflow_id)
    if workflow is None:
        raise HTTPException(404, f"no workflow {workflow_id!r} is recorded")
    attempts = await database.attempts(workflow_id)
    definition = await database.definition(workflow["name"], workflow["version"])
    ended = views.ended(workflow)
    result = result_json(workflow_id, ended) if ended is not None else None
    status = result or views.progress(workflow, attempts, definition)
    return {
        **views.summary(workflow),
        "input": workflow["input"],
        "output": workflow["output"],
        "error": workflow["error"],
        "tasks": status["tasks"],
        "attempts": [views.attempt(row) for row in attempts],
        "transitions": views.history(workflow, attempts, definition),
        "result": result,
        "dag": views.dag(definition),
    }


@router.get("/api/definitions", tags=["definitions"])
async def list_definitions(api: State) -> dict[str, Any]:
    """The definitions the history store recorded, and those the API was given."""
    known = {(b["name"], b["version"]): b for b in await api.database.definitions()}
    for definition in api.catalog or ():
        known[(definition.name, definition.version)] = definition.model_dump(mode="json")
    return {
        "definitions": [
            {"name": name, "version": version, "dag": views.dag(body), "definition": body}
            for (name, version), body in sorted(known.items())
        ]
    }


@router.get("/api/events", response_class=EventSourceResponse, tags=["workflows"])
async def events(
    api: State,
    workflow_id: str | None = Query(None, description="Only this workflow's changes."),
) -> AsyncIterable[ServerSentEvent]:
    """Server-sent events: `ready` once, then `workflow`, a workflow's list row, each time
    its rows change (its state, or any of its attempts)."""
    async with api.changes.subscribe() as queue:
        yield ServerSentEvent(event="ready", data={"interval_s": api.changes.interval})
        while True:
            item = await queue.get()
            if workflow_id is None or item["workflow_id"] == workflow_id:
                yield ServerSentEvent(event="workflow", data=item)


# -- commands ---------------------------------------------------------------------------


@router.post(
    "/api/workflows",
    status_code=202,
    response_model=Triggered,
    dependencies=MUTATING,
    responses=REFUSALS,
    tags=["workflows"],
)
async def trigger(
    api: State,
    body: TriggerRequest,
    idempotency_key: str | None = Header(None, min_length=1, max_length=200),
) -> dict[str, Any]:
    """Start a workflow, its input checked as `podium trigger` checks it. A repeated request
    with one `Idempotency-Key` answers the same workflow id, and starts it once."""
    if api.catalog is None:
        raise Refused(
            400,
            "this API knows no definitions: start it with --definitions "
            "(or PODIUM_DEFINITIONS) to trigger",
        )
    try:
        definition = api.catalog.get(body.workflow, body.version)
    except UnknownWorkflow as error:
        raise Refused(422, str(error)) from None
    problems = definition.input_errors(body.input)
    if problems:
        what = f"{definition.name} v{definition.version}"
        raise Refused(422, f"input rejected for {what}: {'; '.join(problems)}")
    mode = body.mode or api.settings.mode
    workflow_id = await api.publisher.trigger(
        definition, body.input, mode=mode, workflow_id=body.id, key=idempotency_key
    )
    return {
        "workflow_id": workflow_id,
        "workflow": definition.name,
        "version": definition.version,
        "mode": mode,
    }


@router.post(
    "/api/workflows/{workflow_id}/cancel",
    status_code=202,
    response_model=CancelAccepted,
    dependencies=MUTATING,
    responses=REFUSALS,
    tags=["workflows"],
)
async def cancel(api: State, workflow_id: str, body: CancelRequest | None = None) -> dict[str, Any]:
    """Cancel a workflow: no new attempt; a saga undoes what succeeded; it ends Cancelled.
    Its conductor (or tracker) decides: `GET /api/workflows/{workflow_id}` shows the end."""
    workflow = await api.database.workflow(workflow_id)
    if workflow is not None:
        name, version, state = workflow["name"], workflow["version"], workflow["state"]
    else:
        triggered = api.publisher.triggered.get(workflow_id)
        if triggered is None:
            raise HTTPException(404, f"no workflow {workflow_id!r} is recorded")
        (name, version), state = triggered, "Running"
    if state in TERMINAL:
        raise HTTPException(409, f"workflow {workflow_id!r} has ended: {state}")
    reason = body.reason if body is not None else ""
    await api.publisher.cancel(workflow_id, name, version, reason)
    return {"workflow_id": workflow_id, "state": state, "cancel": "requested"}


# -- beside the API -----------------------------------------------------------------------


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    tags=["metrics"],
)
async def metrics() -> Response:
    """Prometheus metrics of this process."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _epoch(moment: datetime | None) -> float | None:
    """Epoch seconds; a time without a zone is UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
