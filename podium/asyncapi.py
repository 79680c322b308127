"""The wire contract as documents: an AsyncAPI 3.0 document of a deployment, and the
JSON Schemas of the payloads (`podium asyncapi`, `podium schemas`).

Everything comes from the code: the topics from `podium.events.topics`, the headers
from the codec's binary-mode binding, the payload schemas from the pydantic models,
and who reads and writes what from the definitions (the task types they use, and in
choreography the outcome topics each task type's participant watches).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

from pydantic.json_schema import models_json_schema

from podium.events import topics
from podium.events.payloads import (
    PAYLOADS,
    TaskCommand,
    TaskFailed,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
    WorkflowCancelAccepted,
    WorkflowCancelRequested,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
    WorkflowTriggered,
)
from podium.workflow.catalog import Catalog
from podium.workflow.join import watched_types

ASYNCAPI_VERSION = "3.0.0"
#: the Kafka bindings' version the document uses
KAFKA_BINDING = "0.5.0"
_REF = "#/components/schemas/{model}"

_TRIGGERS = (WorkflowTriggered, WorkflowCancelRequested, WorkflowCancelAccepted)
_LIFECYCLE = (WorkflowStarted, WorkflowCompleted, WorkflowFailed)
_OUTCOMES = (TaskStarted, TaskSucceeded, TaskFailed, TaskSkipped)
_TASK_EVENTS = {TaskCommand.event_type, *(m.event_type for m in _OUTCOMES)}


def schemas() -> dict[str, Any]:
    """A JSON Schema of every payload, by CloudEvent type, sharing their definitions."""
    mode: Literal["serialization"] = "serialization"
    models = [(model, mode) for model in PAYLOADS.values()]
    refs, shared = models_json_schema(models, ref_template=_REF)
    named = {model.event_type: refs[(model, "serialization")] for model in PAYLOADS.values()}
    return {"types": named, "schemas": shared.get("$defs", {})}


def json_schemas() -> dict[str, Any]:
    """`podium schemas`: one JSON Schema document, a definition per payload model, and
    `x-podium-event-types` naming each CloudEvent type's definition."""
    every = schemas()
    ref = "#/$defs/{model}"
    text = _retarget(every["schemas"], ref)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Podium event payloads (CloudEvent data), by CloudEvent type",
        "x-podium-event-types": {t: _retarget(r, ref) for t, r in every["types"].items()},
        "$defs": text,
    }


def _retarget(value: Any, template: str) -> Any:
    """Point `#/components/schemas/X` references at `template`."""
    if isinstance(value, dict):
        return {k: _retarget(v, template) for k, v in value.items()}
    if isinstance(value, list):
        return [_retarget(v, template) for v in value]
    if isinstance(value, str) and value.startswith("#/components/schemas/"):
        return template.format(model=value.removeprefix("#/components/schemas/"))
    return value


def _id(text: str) -> str:
    """A component key (AsyncAPI allows letters, digits, '_' and '-')."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def _message_id(event_type: str) -> str:
    return _id(event_type.removeprefix("podium."))


def _key(message: type[Any] | str) -> str:
    return message if isinstance(message, str) else _message_id(message.event_type)


def _headers(event_type: str) -> dict[str, Any]:
    """The Kafka headers of one CloudEvent type: the binary content mode (`podium.events.codec`)."""
    text = {"type": "string"}
    props: dict[str, Any] = {
        "ce_specversion": {"const": "1.0"},
        "ce_id": {
            **text,
            "description": "unique per event; a service's outcome events: "
            "`<command_id>:<started|succeeded|failed|skipped>`, the same on a redelivery",
        },
        "ce_source": {**text, "description": "who wrote it, e.g. podium/service/<name>"},
        "ce_type": {"const": event_type},
        "ce_time": {**text, "format": "date-time", "description": "RFC 3339"},
        "ce_subject": {**text, "description": "the workflow id"},
        "ce_workflowid": {**text, "description": "the workflow id (= the record key)"},
        "content-type": {**text, "const": "application/json"},
        "ce_taskid": {**text, "description": "the task id in its definition"},
        "ce_attempt": {**text, "pattern": "^[0-9]+$", "description": "the attempt, 1-based"},
        "ce_correlationid": {**text, "description": "the workflow id unless a producer sets one"},
        "ce_causationid": {**text, "description": "ce_id of the event that caused this one"},
        "ce_traceparent": {**text, "description": "W3C trace context, one trace per workflow"},
    }
    required = [
        "ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_workflowid",
    ]  # fmt: skip
    if event_type in _TASK_EVENTS:
        required += ["ce_taskid", "ce_attempt"]
    return {"type": "object", "properties": props, "required": required}


def _message(model: type[Any], schema_ref: dict[str, Any]) -> dict[str, Any]:
    doc = (model.__doc__ or "").strip()
    message: dict[str, Any] = {
        "name": model.event_type,
        "title": model.__name__,
        "contentType": "application/json",
        "headers": _headers(model.event_type),
        "payload": schema_ref,
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "the workflow id, on every topic"},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }
    if doc and doc != (model.__base__.__doc__ or "").strip():
        message["summary"] = doc.splitlines()[0]
    return message


class _Builder:
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}

    def channel(self, key: str, address: str, models: Iterable[type[Any]], what: str) -> str:
        self.channels[key] = {
            "address": address,
            "description": what,
            "messages": {
                _message_id(m.event_type): {"$ref": f"#/components/messages/{_message_id(m.event_type)}"}
                for m in models
            },
            "bindings": {
                "kafka": {"topic": address, "partitions": self.partitions,
                          "bindingVersion": KAFKA_BINDING}
            },
        }  # fmt: skip
        return key

    def operation(
        self, mode: str, who: str, action: str, channel: str,
        messages: Iterable[type[Any] | str],
    ) -> None:  # fmt: skip
        """`messages`: payload models, or the ids of messages that have none."""
        key = _id(f"{mode}.{who}.{action}.{channel}")
        self.operations[key] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": f"{mode}: {who} {'writes' if action == 'send' else 'reads'} "
            f"{self.channels[channel]['address']}",
            "tags": [{"name": mode}, {"name": who}],
            "messages": [{"$ref": f"#/channels/{channel}/messages/{_key(m)}"} for m in messages],
        }


def document(
    catalog: Catalog, partitions: int = 8, title: str = "Podium deployment"
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of a deployment running these definitions."""
    every = schemas()
    build = _Builder(partitions)
    triggers = build.channel(
        "triggers", topics.TRIGGERS, _TRIGGERS, "Triggers, cancel requests and accepted cancels"
    )
    workflows = build.channel(
        "workflows", topics.WORKFLOWS, _LIFECYCLE, "Workflow lifecycle: started, completed, failed"
    )
    commands: dict[str, str] = {}
    outcomes: dict[str, str] = {}
    for task_type in sorted(catalog.task_types):
        commands[task_type] = build.channel(
            _id(f"commands.{task_type}"), topics.commands(task_type), (TaskCommand,),
            f"Commands for task type {task_type} (orchestration: the conductor writes them)",
        )  # fmt: skip
        outcomes[task_type] = build.channel(
            _id(f"outcomes.{task_type}"), topics.outcomes(task_type), _OUTCOMES,
            f"Start markers and outcomes of task type {task_type}, written by the service "
            "that ran it on the partition of its command (or join)",
        )  # fmt: skip
    _orchestration(build, triggers, workflows, commands, outcomes)
    _choreography(build, catalog, triggers, workflows, outcomes)
    _clients(build, triggers, workflows)
    _internal(build)
    messages = {_message_id(t): _message(model, every["types"][t]) for t, model in PAYLOADS.items()}
    messages.update(_INTERNAL_MESSAGES)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": title,
            "version": "1",
            "description": "Podium's wire: CloudEvents 1.0 in the Kafka binary content mode "
            "(`ce_*` headers, JSON data, `content-type`), the Kafka key the workflow id on "
            "every topic, every topic with one partition count. Workflows: "
            + ", ".join(f"{d.name} v{d.version}" for d in catalog),
        },
        "defaultContentType": "application/json",
        "channels": build.channels,
        "operations": build.operations,
        "components": {"messages": messages, "schemas": every["schemas"]},
    }


def _orchestration(
    build: _Builder, triggers: str, workflows: str, commands: dict[str, str],
    outcomes: dict[str, str],
) -> None:  # fmt: skip
    mode = "orchestration"
    build.operation(mode, "conductor", "receive", triggers, _TRIGGERS[:2])
    build.operation(mode, "conductor", "send", triggers, _TRIGGERS[2:])
    build.operation(mode, "conductor", "send", workflows, _LIFECYCLE)
    for task_type, channel in commands.items():
        build.operation(mode, "conductor", "send", channel, (TaskCommand,))
        build.operation(mode, "conductor", "receive", outcomes[task_type], _OUTCOMES[:3])
        who = f"service of {task_type}"
        build.operation(mode, who, "receive", channel, (TaskCommand,))
        build.operation(mode, who, "send", outcomes[task_type], _OUTCOMES[:3])
        build.operation(mode, "tracker", "receive", outcomes[task_type], _OUTCOMES[:3])
    build.operation(mode, "tracker", "receive", triggers, _TRIGGERS)


def _choreography(
    build: _Builder, catalog: Catalog, triggers: str, workflows: str, outcomes: dict[str, str]
) -> None:
    mode = "choreography"
    build.operation(mode, "tracker", "receive", triggers, _TRIGGERS[:2])
    build.operation(mode, "tracker", "send", triggers, _TRIGGERS[2:])
    build.operation(mode, "tracker", "send", workflows, _LIFECYCLE)
    for task_type, channel in outcomes.items():
        who = f"service of {task_type}"
        build.operation(mode, who, "receive", triggers, _TRIGGERS)
        build.operation(mode, who, "send", channel, _OUTCOMES)
        for watched in sorted(watched_types(catalog, {task_type})):
            build.operation(mode, who, "receive", outcomes[watched], _OUTCOMES)
        build.operation(mode, "tracker", "receive", channel, _OUTCOMES)


def _clients(build: _Builder, triggers: str, workflows: str) -> None:
    for mode in ("orchestration", "choreography"):
        build.operation(mode, "client", "send", triggers, _TRIGGERS[:2])
        build.operation(mode, "client", "receive", workflows, _LIFECYCLE)


_INTERNAL_MESSAGES: dict[str, Any] = {
    "dead_letter": {
        "name": "dead letter",
        "summary": "A record that could not be decoded or validated: its bytes and headers as "
        "they were, the reason added",
        "headers": {
            "type": "object",
            "properties": {
                "podium_dlq_reason": {"type": "string"},
                "podium_dlq_topic": {"type": "string"},
                "podium_dlq_partition": {"type": "string", "pattern": "^[0-9]+$"},
                "podium_dlq_offset": {"type": "string", "pattern": "^[0-9]+$"},
            },
            "required": ["podium_dlq_reason", "podium_dlq_topic"],
        },
        "payload": {"description": "the original record's value, unchanged"},
    },
    "snapshot": {
        "name": "snapshot",
        "summary": "A state snapshot of one workflow, keyed by its id; internal to its writer "
        "(no contract for other readers), a tombstone once it is no longer needed",
        "payload": {"type": ["object", "null"]},
    },
}


def _internal(build: _Builder) -> None:
    """The dead-letter topic (any consumer writes it) and the roles' own changelogs."""
    dead = "dead_letter"
    build.channels[dead] = {
        "address": topics.DEAD_LETTER,
        "description": "Records that could not be decoded or validated, reason in headers",
        "messages": {dead: {"$ref": f"#/components/messages/{dead}"}},
    }
    logs = {
        "conductor_changelog": (topics.CONDUCTOR_CHANGELOG, "orchestration", "conductor"),
        "tracker_changelog": (topics.TRACKER_CHANGELOG, "choreography", "tracker"),
        "choreography_changelog": (
            "podium.choreo.{service}.changelog", "choreography", "service of any task type",
        ),
    }  # fmt: skip
    for key, (address, mode, who) in logs.items():
        build.channels[key] = {
            "address": address,
            "description": f"The {who}'s state, compacted: written before it commits, read "
            "back in full when it is assigned partitions",
            "messages": {"snapshot": {"$ref": "#/components/messages/snapshot"}},
        }
        if "{service}" in address:
            build.channels[key]["parameters"] = {
                "service": {"description": "the service's name (`TaskService(name)`)"}
            }
        for action in ("send", "receive"):
            build.operation(mode, who, action, key, ("snapshot",))
    for mode in ("orchestration", "choreography"):
        build.operation(mode, "any consumer", "send", dead, (dead,))
