"""One bad event never stops a consumer: `podium.runtime.outbox.handle`."""

from __future__ import annotations

import uuid

from aiokafka import ConsumerRecord

from podium.events import CloudEvent, encode, new_event, topics
from podium.events.payloads import WorkflowTriggered
from podium.runtime import memory
from podium.runtime.kafka import ensure_topics, make_producer
from podium.runtime.outbox import Outbox, handle


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

    handle(record, route, outbox, rejected=(LookupError,))
    await outbox.send(lambda key: None)
    log = memory.bus(address).topics[topics.DEAD_LETTER][0]
    memory.drop(address)
    return [dict(r.headers) for r in log]


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
