"""One bad event never stops a consumer: `podium.runtime.outbox.handle`."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import ConsumerRecord

from podium.events import CloudEvent, DecodeError, RawRecord, decode, encode, new_event, topics
from podium.events.payloads import WorkflowTriggered
from podium.runtime import memory
from podium.runtime.kafka import ensure_topics, make_producer
from podium.runtime.outbox import Outbox, Refused, handle


def _record(value: bytes | None, headers: list[tuple[str, bytes]]) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topics.TRIGGERS,
        partition=3,
        offset=17,
        timestamp=0,
        timestamp_type=0,
        key=b"wf-1",
        value=value,
        checksum=None,
        serialized_key_size=4,
        serialized_value_size=len(value or b""),
        headers=headers,
    )


async def _dead_letters(
    route_error: Exception | None, record: ConsumerRecord[bytes, bytes]
) -> list[dict[str, bytes]]:
    address = f"memory://{uuid.uuid4().hex}"
    await ensure_topics(address, [topics.DEAD_LETTER, "podium.test.changelog"], partitions=1)
    outbox = Outbox(make_producer(address), "podium.test.changelog")
    routed: list[CloudEvent] = []

    def route(partition: int, event: CloudEvent) -> None:
        routed.append(event)
        if route_error is not None:
            raise route_error

    handle(record, route, outbox, rejected=(LookupError,), refuse=_refused)
    await outbox.send(lambda key: None)
    log = memory.bus(address).topics[topics.DEAD_LETTER][0]
    memory.drop(address)
    return [dict(r.headers) for r in log]


#: what `refuse` heard of: (partition, offset, the exception's type)
heard: list[tuple[int, int, type[Exception]]] = []


def _refused(partition: int, raw: RawRecord, why: Exception) -> None:
    heard.append((partition, raw.offset, type(why)))
    raise RuntimeError("an answer that fails is logged, not raised")


def _trigger() -> ConsumerRecord[bytes, bytes]:
    event = new_event(
        WorkflowTriggered(workflow="order", version=1, input={}), source="t", workflow_id="wf-1"
    )
    wire = encode(event)
    return _record(wire.value, list(wire.headers))


async def test_an_event_the_processor_cannot_apply_is_dead_lettered_with_its_reason() -> None:
    [dead] = await _dead_letters(RuntimeError("no such compensation"), _trigger())
    assert dead["podium_dlq_topic"] == topics.TRIGGERS.encode()
    assert dead["podium_dlq_reason"].startswith(b"unprocessable: RuntimeError")


async def test_an_expected_refusal_is_dead_lettered_with_its_own_message() -> None:
    [dead] = await _dead_letters(LookupError("unknown workflow order v1"), _trigger())
    assert dead["podium_dlq_reason"] == b"unknown workflow order v1"


async def test_an_undecodable_record_is_dead_lettered_before_routing() -> None:
    [dead] = await _dead_letters(None, _record(b"\x00garbage", []))
    assert b"missing CloudEvents header" in dead["podium_dlq_reason"]


async def test_an_applied_event_sends_nothing_to_the_dead_letter_topic() -> None:
    assert await _dead_letters(None, _trigger()) == []


async def test_a_refusal_is_dead_lettered_with_its_message_and_heard_of() -> None:
    heard.clear()
    [dead] = await _dead_letters(Refused("input rejected: n", "InputError"), _trigger())
    assert dead["podium_dlq_reason"] == b"input rejected: n"
    assert heard == [(3, 17, Refused)]


async def test_every_dead_lettered_record_is_heard_of_and_a_failing_answer_stops_nothing() -> None:
    heard.clear()
    await _dead_letters(None, _record(b"\x00garbage", []))
    await _dead_letters(RuntimeError("boom"), _trigger())
    assert await _dead_letters(None, _trigger()) == []
    assert heard == [(3, 17, DecodeError), (3, 17, DecodeError)]


def test_a_record_keyed_other_than_by_its_workflow_id_does_not_decode() -> None:
    wire = encode(
        new_event(
            WorkflowTriggered(workflow="o", version=1, input={}), source="t", workflow_id="wf-1"
        )
    )
    for key, said in [(None, "no key"), (b"wf-2", "key 'wf-2'")]:
        raw = RawRecord(topics.TRIGGERS, 0, 0, key, wire.value, list(wire.headers))
        with pytest.raises(DecodeError, match=f"^.*: {said} where the workflow id 'wf-1'"):
            decode(raw)
