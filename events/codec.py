"""CloudEvents Kafka protocol binding, binary content mode, with orjson.

Attributes travel as `ce_<name>` headers, the data as the record value, the
content type in the `content-type` header, the workflow id as the key. Anything
that cannot be turned back into a valid event raises `DecodeError`, which keeps
the raw record and the reason so the consumer can dead-letter it and move on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from podium.events import topics
from podium.events.envelope import JSON, SPEC_VERSION, CloudEvent
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

Headers = list[tuple[str, bytes]]

_OPTIONAL_STRING_ATTRS = ("correlationid", "causationid", "traceparent")
_REQUIRED = ("id", "source", "type", "specversion", "time", "workflowid")

_TRIGGERS = {
    m.event_type for m in (WorkflowTriggered, WorkflowCancelRequested, WorkflowCancelAccepted)
}
_LIFECYCLE = {m.event_type for m in (WorkflowStarted, WorkflowCompleted, WorkflowFailed)}
_OUTCOMES = {m.event_type for m in (TaskStarted, TaskSucceeded, TaskFailed, TaskSkipped)}


def carried(topic: str) -> set[str] | None:
    """The event types a topic of Podium's carries; None: any (a topic not Podium's)."""
    if topic == topics.TRIGGERS:
        return _TRIGGERS
    if topic == topics.WORKFLOWS:
        return _LIFECYCLE
    if topics.is_command_topic(topic):
        return {TaskCommand.event_type}
    if topic.startswith("podium.tasks.") and topic.endswith(".outcomes"):
        return _OUTCOMES
    return None


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """What a producer sends: key, value (None: a tombstone) and headers."""

    key: bytes
    value: bytes | None
    headers: Headers = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record as consumed, before decoding: enough to dead-letter it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers


class DecodeError(Exception):
    """A record that is not a valid Podium CloudEvent; carries the raw record."""

    def __init__(self, reason: str, raw: RawRecord) -> None:
        super().__init__(f"{raw.topic}[{raw.partition}]@{raw.offset}: {reason}")
        self.reason = reason
        self.raw = raw


def encode(event: CloudEvent) -> KafkaRecord:
    headers: Headers = [
        ("ce_specversion", event.specversion.encode()),
        ("ce_id", event.id.encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_time", event.time.isoformat().encode()),
        ("ce_subject", event.subject.encode()),
        ("ce_workflowid", event.workflowid.encode()),
        ("content-type", event.datacontenttype.encode()),
    ]
    if event.taskid is not None:
        headers.append(("ce_taskid", event.taskid.encode()))
    if event.attempt is not None:
        headers.append(("ce_attempt", str(event.attempt).encode()))
    for name in _OPTIONAL_STRING_ATTRS:
        value = getattr(event, name)
        if value is not None:
            headers.append((f"ce_{name}", value.encode()))
    # pydantic's own serialiser: the same JSON as `model_dump(mode="json")` through orjson
    # at half the cost, and no 64-bit limit on an input's integers
    value = event.data.__pydantic_serializer__.to_json(event.data)
    return KafkaRecord(key=event.key, value=value, headers=headers)


def decode(raw: RawRecord) -> CloudEvent:
    """Decode a consumed record; raise `DecodeError` naming what is wrong.

    The record's key must be its workflow id (`ce_workflowid`): every event of a
    workflow shares one partition of each topic, so one member owns the workflow.
    A record keyed otherwise landed on a partition its workflow's owner does not read.
    Each of Podium's topics carries its own event types (`carried`): another type on it
    is refused too.
    """
    attrs = _attributes(raw)
    workflow_id = attrs["workflowid"]
    if raw.key != workflow_id.encode():
        key = "no key" if raw.key is None else f"key {raw.key.decode(errors='replace')!r}"
        raise DecodeError(
            f"{key} where the workflow id {workflow_id!r} (ce_workflowid) belongs: "
            "every event of a workflow is keyed by its id",
            raw,
        )
    model = PAYLOADS.get(attrs["type"])
    if model is None:
        raise DecodeError(f"unknown event type {attrs['type']!r}", raw)
    allowed = carried(raw.topic)
    if allowed is not None and attrs["type"] not in allowed:
        raise DecodeError(f"a {attrs['type']} event does not belong on {raw.topic}", raw)
    if raw.value is None:
        raise DecodeError("record has no value (data)", raw)
    try:
        data = model.model_validate_json(raw.value)
    except ValidationError as exc:
        raise DecodeError(f"invalid {attrs['type']} data: {_first_error(exc)}", raw) from None
    try:
        return CloudEvent.model_validate({**attrs, "data": data})
    except ValidationError as exc:
        raise DecodeError(f"invalid CloudEvent attributes: {_first_error(exc)}", raw) from None


def event_type(headers: Headers) -> bytes | None:
    """A record's `ce_type` header as it came, without decoding the record."""
    for name, value in headers:
        if name == "ce_type":
            return value
    return None


def salvage(raw: RawRecord) -> tuple[dict[str, str], Any]:
    """What a record that did not decode still says: its `ce_*` attributes that read as
    text, and its data if it is JSON (else None). Enough to answer for a rejected event."""
    attrs = {}
    for name, value in raw.headers:
        if name.startswith("ce_") and isinstance(value, bytes):
            try:
                attrs[name[3:]] = value.decode()
            except UnicodeDecodeError:
                continue
    try:
        data = orjson.loads(raw.value) if raw.value is not None else None
    except orjson.JSONDecodeError:
        data = None
    return attrs, data


def _attributes(raw: RawRecord) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    content_type = JSON
    for name, value in raw.headers:
        try:
            text = value.decode()
        except (UnicodeDecodeError, AttributeError):
            raise DecodeError(f"header {name!r} is not UTF-8", raw) from None
        if name == "content-type":
            content_type = text
        elif name.startswith("ce_"):
            attrs[name[3:]] = text
    missing = [f"ce_{name}" for name in _REQUIRED if not attrs.get(name)]
    if missing:
        raise DecodeError(f"missing CloudEvents header(s): {', '.join(missing)}", raw)
    if attrs["specversion"] != SPEC_VERSION:
        raise DecodeError(f"unsupported specversion {attrs['specversion']!r}", raw)
    if not content_type.startswith(JSON):
        raise DecodeError(f"unsupported content-type {content_type!r}", raw)
    attrs["datacontenttype"] = content_type
    attrs.setdefault("subject", attrs["workflowid"])
    attrs["time"] = _parse("time", attrs["time"], datetime.fromisoformat, raw)
    if "attempt" in attrs:
        attrs["attempt"] = _parse("attempt", attrs["attempt"], int, raw)
    return attrs


def _parse(name: str, text: str, parse: Callable[[str], Any], raw: RawRecord) -> Any:
    try:
        return parse(text)
    except ValueError:
        what = "RFC 3339" if name == "time" else "an integer"
        raise DecodeError(f"ce_{name} {text!r} is not {what}", raw) from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "<root>"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}"


def dead_letter(error: DecodeError) -> tuple[str, KafkaRecord]:
    """The dead-letter record for an undecodable one: original bytes, reason in headers."""
    raw = error.raw
    headers: Headers = [
        *raw.headers,
        ("podium_dlq_reason", error.reason.encode()),
        ("podium_dlq_topic", raw.topic.encode()),
        ("podium_dlq_partition", str(raw.partition).encode()),
        ("podium_dlq_offset", str(raw.offset).encode()),
    ]
    return topics.DEAD_LETTER, KafkaRecord(
        key=raw.key or b"", value=raw.value or b"", headers=headers
    )
