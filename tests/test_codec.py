"""The CloudEvents Kafka binary binding: round trip, interop, and garbage in."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from hypothesis import given
from hypothesis import strategies as st

from podium.events import (
    DecodeError,
    ErrorInfo,
    RawRecord,
    TaskCommand,
    TaskFailed,
    dead_letter,
    decode,
    encode,
    event_type,
    new_event,
    topics,
)


def command_event() -> object:
    payload = TaskCommand(
        workflow="order",
        version=1,
        command_id="wf-1:reserve:1",
        task_id="reserve",
        task_type="inventory.reserve",
        attempt=1,
        input={"sku": "A-1", "qty": 2},
        idempotency_key="wf-1:reserve",
        timeout=5.0,
    )
    return new_event(
        payload,
        source="podium/conductor",
        workflow_id="wf-1",
        id="wf-1:reserve:1",
        task_id="reserve",
        attempt=1,
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        time=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
    )


def as_raw(event: object, topic: str = "t") -> RawRecord:
    record = encode(event)  # type: ignore[arg-type]
    return RawRecord(topic, 0, 0, record.key, record.value, record.headers)


def test_round_trip_keeps_every_attribute_and_payload() -> None:
    event = command_event()
    assert decode(as_raw(event)) == event


def test_key_is_the_workflow_id_and_headers_follow_the_binary_binding() -> None:
    record = encode(command_event())  # type: ignore[arg-type]
    headers = dict(record.headers)
    assert record.key == b"wf-1"
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"podium.task.command"
    assert headers["content-type"] == b"application/json"
    assert headers["ce_workflowid"] == b"wf-1"
    assert orjson.loads(record.value)["task_type"] == "inventory.reserve"


def test_the_official_cloudevents_sdk_reads_an_encoded_event() -> None:
    record = encode(command_event())  # type: ignore[arg-type]
    message = KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
    event = from_binary(message, JSONFormat())
    attributes = event.get_attributes()
    assert attributes["type"] == "podium.task.command"
    assert attributes["subject"] == "wf-1"
    assert attributes["workflowid"] == "wf-1"
    assert event.get_data()["command_id"] == "wf-1:reserve:1"


def test_failure_outcome_round_trips() -> None:
    payload = TaskFailed(
        workflow="order",
        version=1,
        command_id="wf-2:charge:3",
        task_id="charge",
        task_type="payments.charge",
        attempt=3,
        error=ErrorInfo(type="CardDeclined", message="no", retryable=False),
    )
    event = new_event(payload, source="svc", workflow_id="wf-2", task_id="charge", attempt=3)
    decoded = decode(as_raw(event))
    assert decoded.data == payload
    assert isinstance(decoded.data, TaskFailed)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h, v: ([x for x in h if x[0] != "ce_type"], v), "missing CloudEvents header"),
        (lambda h, v: ([*h, ("ce_type", b"\xff\xfe")], v), "not UTF-8"),
        (lambda h, v: (h, b"{not json"), "invalid podium.task.command data"),
        (lambda h, v: (h, None), "no value"),
        (lambda h, v: (h, orjson.dumps({"workflow": "x"})), "invalid podium.task.command data"),
        (
            lambda h, v: ([(k, b"9.9" if k == "ce_specversion" else x) for k, x in h], v),
            "unsupported specversion",
        ),
        (
            lambda h, v: ([(k, b"bogus.type" if k == "ce_type" else x) for k, x in h], v),
            "unknown event type",
        ),
        (
            lambda h, v: ([(k, b"yesterday" if k == "ce_time" else x) for k, x in h], v),
            "not RFC 3339",
        ),
    ],
)
def test_bad_records_raise_the_typed_decode_error(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    record = encode(command_event())  # type: ignore[arg-type]
    headers, value = mutate(list(record.headers), record.value)
    raw = RawRecord("podium.tasks.x.commands", 3, 42, record.key, value, headers)
    with pytest.raises(DecodeError) as caught:
        decode(raw)
    assert reason in caught.value.reason
    assert caught.value.raw is raw


@given(
    headers=st.lists(st.tuples(st.text(max_size=12), st.binary(max_size=40)), max_size=8),
    value=st.one_of(st.none(), st.binary(max_size=200)),
)
def test_garbage_never_escapes_as_anything_but_decode_error(headers, value) -> None:  # type: ignore[no-untyped-def]
    raw = RawRecord("t", 0, 0, b"k", value, headers)
    with pytest.raises(DecodeError):
        decode(raw)


def test_dead_letter_record_keeps_the_bytes_and_names_the_reason() -> None:
    raw = RawRecord("podium.tasks.x.commands", 2, 17, b"wf", b"garbage", [("a", b"b")])
    with pytest.raises(DecodeError) as caught:
        decode(raw)
    topic, record = dead_letter(caught.value)
    headers = dict(record.headers)
    assert topic == topics.DEAD_LETTER
    assert record.value == b"garbage"
    assert headers["podium_dlq_topic"] == b"podium.tasks.x.commands"
    assert headers["podium_dlq_partition"] == b"2"
    assert headers["podium_dlq_offset"] == b"17"
    assert b"missing CloudEvents header" in headers["podium_dlq_reason"]


def test_the_event_type_is_read_from_the_headers_without_decoding() -> None:
    """What a loop skips undecoded (`Spec.ignored`): the start markers, by `ce_type`."""
    record = encode(command_event())  # type: ignore[arg-type]
    assert event_type(record.headers) == b"podium.task.command"
    assert event_type([("ce_id", b"x")]) is None
    assert event_type([("ce_type", b"\xff")]) == b"\xff"  # as it came: no decoding
