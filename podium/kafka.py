"""Thin aiokafka glue shared by every runtime: clients tuned for tansu and Kafka,
explicit topic creation, and consumed records turned into `RawRecord`s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from events import KafkaRecord, RawRecord
from podium.settings import ConsumerSettings

log = logging.getLogger("podium.kafka")


def make_producer(bootstrap_servers: str, **overrides: Any) -> AIOKafkaProducer:
    # tansu has no idempotent producer; acks=all is still the durable choice on Kafka.
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": 0,
        "max_batch_size": 256 * 1024,
        **overrides,
    }
    return AIOKafkaProducer(**options)


def make_consumer(
    bootstrap_servers: str,
    *topics: str,
    group_id: str | None,
    settings: ConsumerSettings | None = None,
    **overrides: Any,
) -> AIOKafkaConsumer:
    s = settings or ConsumerSettings()
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": s.fetch_max_wait_ms,
        "session_timeout_ms": s.session_timeout_ms,
        "heartbeat_interval_ms": s.heartbeat_interval_ms,
        "max_poll_records": s.max_poll_records,
        **overrides,
    }
    return AIOKafkaConsumer(*topics, **options)


async def ensure_topics(bootstrap_servers: str, names: Iterable[str], partitions: int) -> None:
    """Create topics explicitly, all with one partition count (co-partitioning).

    Topics that exist already are left as they are (tansu cannot add partitions).
    """
    wanted = sorted(set(names))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(name, num_partitions=partitions, replication_factor=1)
            for name in wanted
            if name not in existing
        ]
        if new:
            # a concurrent creator may win the race: same count by contract
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
    finally:
        await admin.close()


def raw_record(record: ConsumerRecord[bytes, bytes]) -> RawRecord:
    return RawRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=list(record.headers or ()),
    )


async def send(producer: AIOKafkaProducer, topic: str, record: KafkaRecord) -> asyncio.Future[Any]:
    """Queue a record and return its delivery future without waiting for the broker.

    The caller awaits the futures (or flushes) once per batch, never per record.
    """
    future: asyncio.Future[Any] = await producer.send(
        topic, value=record.value, key=record.key, headers=record.headers
    )
    return future
