"""`podium run`: everything for one workflow in one process, then stop it all."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from podium.client import Client, Ended, prepare_topics
from podium.conductor.conductor import Conductor, Tracker
from podium.events import ONESHOT_SOURCE, Mode
from podium.history.database import Database, HistoryError
from podium.history.recorder import Recorder
from podium.runtime.component import Component
from podium.runtime.settings import Settings
from podium.services.participant import Participant
from podium.services.service import TaskService
from podium.services.worker import Worker
from podium.triggers.waits import wait_parts
from podium.workflow.catalog import Catalog
from podium.workflow.definition import Definition
from podium.workflow.machine import WorkflowState
from podium.workflow.triggers import WAIT_TYPE

log = logging.getLogger("podium.run")

OnState = Callable[[WorkflowState], None]
#: how long after its end a run waits for its workflow to be in the history store
RECORD_WITHIN_S = 30.0
T = TypeVar("T")


async def run_once(
    definition: Definition,
    services: list[TaskService],
    input: dict[str, Any],
    *,
    bootstrap_servers: str,
    settings: Settings,
    workflow_id: str | None = None,
    timeout: float | None = None,
    mode: Mode = Mode.ORCHESTRATION,
    on_state: OnState | None = None,
    history: Database | None = None,
) -> tuple[str, Ended]:
    """Run one workflow to its end; with `history`, return once its end is recorded there."""
    catalog = Catalog([definition])
    # the trigger gateway completes wait tasks: no service handles them
    missing = catalog.task_types - {WAIT_TYPE} - {t for s in services for t in s.task_types}
    if missing:
        raise LookupError(f"no service handles task type(s): {', '.join(sorted(missing))}")
    await prepare_topics(bootstrap_servers, settings, catalog.task_types)
    workflow_id = workflow_id or uuid.uuid4().hex
    parts = build_parts(
        catalog, services, bootstrap_servers, settings, mode, on_state, only=workflow_id
    )
    # the gateway's part for this run: its wait tasks, in its mode (its schedules and
    # bindings would start other workflows, which nothing of a one-shot run serves)
    parts.extend(wait_parts(catalog, bootstrap_servers, settings, modes=[mode], only=workflow_id))
    recorder = None
    if history is not None:
        recorder = Recorder(catalog, bootstrap_servers, settings, history, only=workflow_id)
        parts.append(recorder)
    async with _running(parts) as tasks:
        await _all_ready(parts, tasks)
        recorded = recorder.recorded(workflow_id) if recorder is not None else None
        async with Client(bootstrap_servers, settings) as client:
            workflow_id = await client.trigger(
                definition, input, workflow_id=workflow_id, mode=mode, source=ONESHOT_SOURCE
            )
            ended = await _unless_crashed(client.expect(workflow_id), tasks, timeout)
        if recorded is not None:
            try:
                await _unless_crashed(recorded, tasks, RECORD_WITHIN_S)
            except TimeoutError:
                raise HistoryError(
                    f"workflow {workflow_id} ended but was not recorded within {RECORD_WITHIN_S:.0f}s"
                ) from None
    return workflow_id, ended


def build_parts(
    catalog: Catalog,
    services: list[TaskService],
    bootstrap_servers: str,
    settings: Settings,
    mode: Mode,
    on_state: OnState | None = None,
    only: str | None = None,
) -> list[Component]:
    """The components of one deployment in `mode`, not yet started.

    Orchestration: a worker per service and the conductor. Choreography: a
    participant per service and the tracker, which announces the end. With `only`,
    the stateful ones handle that one workflow, apart from any live deployment.
    """
    if mode == Mode.CHOREOGRAPHY:
        participants = [
            Participant(s, catalog, bootstrap_servers, settings, only=only) for s in services
        ]
        tracker = Tracker(catalog, bootstrap_servers, settings, on_state=on_state, only=only)
        return [*participants, tracker]
    workers = [Worker(service, bootstrap_servers, settings) for service in services]
    conductor = Conductor(catalog, bootstrap_servers, settings, on_state=on_state, only=only)
    return [*workers, conductor]


@contextlib.asynccontextmanager
async def _running(parts: list[Component]) -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks = [asyncio.create_task(part.run()) for part in parts]
    try:
        yield tasks
    finally:
        for part in parts:
            part.stop()
        for part, outcome in zip(
            parts, await asyncio.gather(*tasks, return_exceptions=True), strict=True
        ):
            if isinstance(outcome, BaseException):
                log.error("%s crashed", type(part).__name__, exc_info=outcome)


async def _unless_crashed(
    awaited: asyncio.Future[T], tasks: list[asyncio.Task[None]], timeout: float | None
) -> T:
    """Await `awaited`, but raise at once if a component stops first."""
    waited: list[asyncio.Future[Any]] = [awaited, *tasks]
    done, _ = await asyncio.wait(waited, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if awaited in done:
        return awaited.result()
    for task in done:
        task.result()
        raise RuntimeError("a component stopped before the workflow ended")
    raise TimeoutError


async def _all_ready(parts: list[Component], tasks: list[asyncio.Task[None]]) -> None:
    """Wait until every part has its partitions; fail fast if one of them crashed."""
    ready = [asyncio.create_task(part.ready.wait()) for part in parts]
    pending: set[asyncio.Future[Any]] = {*ready, *tasks}
    while any(not r.done() for r in ready):
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for finished in done:
            if finished in tasks:
                finished.result()  # raises what crashed it
                raise RuntimeError("a component stopped before it was ready")
