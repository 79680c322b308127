"""The embedded broker and the codec against a real Kafka-protocol broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from podium.broker import api_versions_round_trip, free_port
from podium.events import TaskSucceeded, decode, encode, new_event
from podium.runtime.kafka import (
    PARKED_FETCH_WAIT_MS,
    WAKING_FETCH_WAIT_MS,
    ensure_topics,
    fetch_wait_ms,
    learn_broker,
    make_consumer,
    make_producer,
    raw_record,
    send,
)
from podium.runtime.settings import ConsumerSettings

pytestmark = pytest.mark.integration


async def test_topics_are_created_with_the_requested_partition_count(
    kafka: str, unique: str
) -> None:
    await ensure_topics(kafka, [f"{unique}.a", f"{unique}.b"], partitions=8)
    await ensure_topics(kafka, [f"{unique}.a"], partitions=8)  # idempotent
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        described = await admin.describe_topics([f"{unique}.a", f"{unique}.b"])
    finally:
        await admin.close()
    assert sorted(len(t["partitions"]) for t in described) == [8, 8]


async def test_events_travel_through_the_broker_with_the_codec(kafka: str, unique: str) -> None:
    topic = f"{unique}.outcomes"
    await ensure_topics(kafka, [topic], partitions=8)
    sent = [
        new_event(
            TaskSucceeded(
                workflow="order",
                version=1,
                command_id=f"wf-{i}:t:1",
                task_id="t",
                task_type="x.y",
                attempt=1,
                output={"n": i},
            ),
            source="test",
            workflow_id=f"wf-{i}",
            task_id="t",
            attempt=1,
        )
        for i in range(20)
    ]
    producer = make_producer(kafka)
    await producer.start()
    try:
        futures = [await send(producer, topic, encode(e)) for e in sent]
        metadata = [await f for f in futures]
    finally:
        await producer.stop()
    # one writer per workflow: the key decides the partition, the same for every event of it
    assert len({m.partition for m in metadata}) > 1

    consumer = make_consumer(kafka, topic, group_id=None)
    await consumer.start()
    try:
        received = []
        deadline = time.monotonic() + 30
        while len(received) < len(sent):
            assert time.monotonic() < deadline, f"{len(received)} of {len(sent)} received"
            batch = await consumer.getmany(timeout_ms=1000)
            received += [decode(raw_record(r)) for records in batch.values() for r in records]
    finally:
        await consumer.stop()
    assert sorted(received, key=lambda e: e.id) == sorted(sent, key=lambda e: e.id)


def test_podium_broker_runs_until_interrupted_and_serves_a_client(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "podium", "broker", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()  # printed once the broker answers
        assert line == f"127.0.0.1:{port}"
        assert api_versions_round_trip("127.0.0.1", port)
        import asyncio

        async def client() -> int:
            await ensure_topics(line, ["cli-check"], partitions=2)
            admin = AIOKafkaAdminClient(bootstrap_servers=line)
            await admin.start()
            try:
                [described] = await admin.describe_topics(["cli-check"])
                return len(described["partitions"])
            finally:
                await admin.close()

        assert asyncio.run(client()) == 2
    finally:
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert not api_versions_round_trip("127.0.0.1", port)


def test_help_lists_commands_and_unknown_options_fail() -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "podium", "--help"], capture_output=True, text=True, check=False
    )
    assert helped.returncode == 0
    assert "broker" in helped.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "podium", "broker", "--bogus"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "No such option" in bad.stderr and "--bogus" in bad.stderr


async def test_consumers_park_fetches_as_long_as_the_broker_answers_them_early(
    kafka: str, unique: str, request: pytest.FixtureRequest
) -> None:
    """Apache Kafka answers a parked fetch as soon as a record arrives, so its consumers
    may park for 500 ms (no empty fetch every 5 ms, on either side) and a record still
    reaches one at once; tansu is asked for 5 ms fetches, as it needs (DESIGN.md)."""
    is_kafka = request.node.callspec.params["kafka"] != "embedded"
    assert await learn_broker(kafka) is is_kafka
    wait = fetch_wait_ms(kafka, ConsumerSettings())
    assert wait == (WAKING_FETCH_WAIT_MS if is_kafka else PARKED_FETCH_WAIT_MS)
    assert fetch_wait_ms(kafka, ConsumerSettings(fetch_max_wait_ms=7)) == 7  # as set wins
    topic = f"{unique}.parked"
    await ensure_topics(kafka, [topic], partitions=1)
    consumer = make_consumer(kafka, topic, group_id=None)
    producer = make_producer(kafka)
    await consumer.start()
    await producer.start()
    hops = []
    try:
        await consumer.getmany(timeout_ms=100)  # positioned at the end, a fetch parked
        for n in range(5):
            sent = time.monotonic()
            await producer.send_and_wait(topic, key=b"k", value=str(n).encode())
            got: list[bytes | None] = []
            while not got:
                batch = await consumer.getmany(timeout_ms=1_000)
                got = [r.value for records in batch.values() for r in records]
            assert got == [str(n).encode()]
            hops.append(time.monotonic() - sent)
    finally:
        await producer.stop()
        await consumer.stop()
    # a broker that kept the record until the park ran out would take ~wait / 2 a hop
    assert sorted(hops)[2] < 0.15, f"hops {hops} with fetches parked up to {wait} ms"
