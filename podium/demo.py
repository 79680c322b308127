"""`make demo`: a CloudEvent through the embedded broker and back."""

from __future__ import annotations

import asyncio

import orjson

from events import WorkflowTriggered, decode, encode, new_event, topics
from podium.broker import bootstrap_or_embedded
from podium.kafka import ensure_topics, make_consumer, make_producer, raw_record, send
from podium.settings import Settings


async def round_trip(bootstrap: str, partitions: int) -> None:
    await ensure_topics(bootstrap, [topics.TRIGGERS], partitions)
    event = new_event(
        WorkflowTriggered(workflow="order", version=1, input={"sku": "A-1", "qty": 2}),
        source="podium/demo",
        workflow_id="demo-1",
    )
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        meta = await (await send(producer, topics.TRIGGERS, encode(event)))
    finally:
        await producer.stop()
    print(f"sent     {event.type} to {meta.topic}[{meta.partition}]@{meta.offset}")
    consumer = make_consumer(bootstrap, topics.TRIGGERS, group_id=None)
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    received = decode(raw_record(record))
                    if received.id == event.id:
                        print(f"received {received.type} for workflow {received.workflowid}:")
                        print(
                            orjson.dumps(
                                received.model_dump(mode="json"), option=orjson.OPT_INDENT_2
                            ).decode()
                        )
                        return
    finally:
        await consumer.stop()


def main() -> None:
    settings = Settings()
    with bootstrap_or_embedded(settings.bootstrap_servers) as bootstrap:
        asyncio.run(round_trip(bootstrap, settings.partitions))


if __name__ == "__main__":
    main()
