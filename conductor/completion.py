"""`on_complete` carried out where a workflow's end is announced.

The conductor (orchestration) and the tracker (choreography) call `complete`
beside their end announcement; the entries to run are decided purely
(`podium.workflow.completion`) and go out with the batch that decided the end:

- `start`: a `workflow.triggered` on `podium.triggers` under the derived id
  `<id>:on_complete:<index>`, in the ended workflow's mode: a repeat starts nothing;
- `publish`: a CloudEvent (binary mode) on the entry's topic, keyed by the workflow
  id, its data exactly the result object of `podium run --json`, its id
  `<id>:on_complete:<index>` every time.

Delivery is at-least-once, like every Podium effect: the events go out with the
batch that decided the end and its offsets commit once they are acknowledged. A
crash between the send and the commit decides the end again on restart and sends
again, with the same ids (a consumer of the published topic drops a repeated
`ce_id`; a repeated start is refused by the id). A restore within
`REANNOUNCE_WINDOW_S` of the end re-runs them as it re-announces the end.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from podium.events import (
    KafkaRecord,
    Mode,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowTriggered,
    encode,
    new_event,
    topics,
)
from podium.events.envelope import JSON, SPEC_VERSION, workflow_traceparent
from podium.runtime.outbox import Outbox
from podium.workflow.catalog import Catalog, UnknownWorkflow
from podium.workflow.completion import Action, actions
from podium.workflow.machine import WorkflowState

log = logging.getLogger("podium.on_complete")

#: the CloudEvent type of a published result
RESULT_TYPE = "podium.workflow.result"


def result_object(workflow_id: str, ended: WorkflowCompleted | WorkflowFailed) -> dict[str, Any]:
    """The result object `podium run --json` prints (`podium.client.result_json`)."""
    return {"workflow_id": workflow_id, **ended.model_dump(mode="json")}


def published_to(catalog: Catalog) -> list[str]:
    """The topics `on_complete` entries publish to: created with Podium's own."""
    return sorted(
        {
            entry.publish.topic
            for definition in catalog
            for entry in definition.on_complete
            if entry.publish is not None
        }
    )


def complete(
    outbox: Outbox,
    catalog: Catalog,
    state: WorkflowState,
    mode: Mode,
    result: WorkflowCompleted | WorkflowFailed,
    source: str,
) -> None:
    """Send what the ended workflow's `on_complete` entries ask for."""
    definition = catalog.get(state.name, state.version)
    if not definition.on_complete:
        return
    for action in actions(definition, state):
        if action.problem is not None:
            log.error("on_complete[%d] of %s: %s", action.index, state.workflow_id, action.problem)
        elif action.entry.start is not None:
            _start(outbox, catalog, state, mode, action, source)
        elif action.entry.publish is not None:
            record = published(state.workflow_id, action.workflow_id, result, source)
            outbox.emit(action.entry.publish.topic, None, record)


def _start(
    outbox: Outbox,
    catalog: Catalog,
    state: WorkflowState,
    mode: Mode,
    action: Action,
    source: str,
) -> None:
    start = action.entry.start
    assert start is not None and action.input is not None
    try:
        target = catalog.get(start.workflow, start.version)
    except UnknownWorkflow as error:
        log.error("on_complete[%d] of %s: %s", action.index, state.workflow_id, error)
        return
    problems = target.input_errors(action.input)
    if problems:
        log.error(
            "on_complete[%d] of %s: input rejected for %s: %s",
            action.index,
            state.workflow_id,
            target.name,
            "; ".join(problems),
        )
        return
    payload = WorkflowTriggered(
        workflow=target.name, version=target.version, input=action.input, mode=mode
    )
    event = new_event(
        payload,
        source=source,
        workflow_id=action.workflow_id,
        id=f"{action.workflow_id}:trigger",
        causation_id=f"{state.workflow_id}:finished",
        correlation_id=state.workflow_id,
    )
    outbox.emit(topics.TRIGGERS, None, encode(event))


def published(
    workflow_id: str, event_id: str, result: WorkflowCompleted | WorkflowFailed, source: str
) -> KafkaRecord:
    """The result as a CloudEvent in binary mode, keyed by the workflow id."""
    time = result.ended_at or datetime.now(UTC).isoformat()
    headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", event_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", RESULT_TYPE.encode()),
        ("ce_time", time.encode()),
        ("ce_subject", workflow_id.encode()),
        ("ce_workflowid", workflow_id.encode()),
        ("ce_traceparent", workflow_traceparent(workflow_id).encode()),
        ("content-type", JSON.encode()),
    ]
    value = orjson.dumps(result_object(workflow_id, result))
    return KafkaRecord(key=workflow_id.encode(), value=value, headers=headers)
