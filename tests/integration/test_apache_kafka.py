"""Apache Kafka from its jars: one KRaft broker and a three-node cluster, for real.

Start time and resident memory are printed (`pytest -s`) for benchmarks/README.md.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from podium.apache_kafka import ApacheKafka, metadata_brokers, unavailable
from podium.broker import HOST, api_versions_round_trip, free_port
from podium.runtime.kafka import ContiguousReader, ensure_topics, make_consumer, make_producer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

MB = 1024 * 1024
UNAVAILABLE = unavailable()
needs_apache_kafka = pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE))


async def describe(bootstrap: str, name: str) -> list[dict[str, Any]]:
    """The topic's partitions (leader, replicas, isr), from the cluster's metadata."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [topic] = await admin.describe_topics([name])
    finally:
        await admin.close()
    partitions: list[dict[str, Any]] = topic["partitions"]
    return partitions


async def produce(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    """Send every (key, value) with acks=all (Podium's producer) and wait for each ack."""
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value) for key, value in items]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@dataclass
class Read:
    records: list[tuple[bytes | None, bytes | None, int]]  # key, value, offset
    gaps: int  # fetches the gap-checking reader repeated before reading past a gap
    seconds: float


async def read_all(bootstrap: str, topic: str, partitions: int) -> Read:
    """Every record up to the end offsets (right on Kafka), read from the beginning
    through the gap-checking reader Podium's restore uses."""
    began = time.monotonic()
    consumer = make_consumer(bootstrap, group_id=None)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    await consumer.start()
    try:
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        reader = ContiguousReader(consumer)
        await reader.track(tps)
        records: list[tuple[bytes | None, bytes | None, int]] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await reader.getmany(timeout_ms=1000)
            records += [(r.key, r.value, r.offset) for rs in batch.values() for r in rs]
        return Read(records, reader.gaps, time.monotonic() - began)
    finally:
        await consumer.stop()


@needs_apache_kafka
async def test_a_broker_starts_answers_keeps_acked_records_across_kill_9_and_stops() -> None:
    started = time.monotonic()
    kafka = ApacheKafka()
    with kafka:
        start_s = time.monotonic() - started
        rss = kafka.rss_bytes()
        node = kafka.nodes[0]
        assert metadata_brokers(HOST, node.port) == 1
        await ensure_topics(kafka.bootstrap_servers, ["acked"], partitions=1)
        await produce(kafka.bootstrap_servers, "acked", [(b"k", b"before the crash")])

        kafka.kill(0)  # kill -9: its log dir stays
        assert not api_versions_round_trip(HOST, node.port)
        restarted = time.monotonic()
        kafka.start_node(0)
        restart_s = time.monotonic() - restarted

        read = await read_all(kafka.bootstrap_servers, "acked", 1)
        assert read.records == [(b"k", b"before the crash", 0)]
    assert not node.alive()
    assert not kafka.data_dir.exists()  # the temporary folder went with it
    print(
        f"\nApache Kafka, one broker: started in {start_s:.1f} s, RSS {rss / MB:.0f} MB;"
        f" restarted after kill -9 in {restart_s:.1f} s"
    )


@pytest.mark.parametrize("kafka", ["apache-kafka"], indirect=True)
async def test_a_compacted_topic_keeps_the_last_record_per_key(kafka: str, unique: str) -> None:
    """Kafka really compacts (tansu accepts the config and ignores it), which leaves
    real gaps in the offsets: the gap-checking reader must get past them."""
    topic = f"{unique}.changelog"
    await ensure_topics(
        kafka,
        [topic],
        partitions=1,
        configs={
            "cleanup.policy": "compact",
            "segment.ms": "100",
            "min.cleanable.dirty.ratio": "0.01",
            "min.compaction.lag.ms": "0",
        },
    )
    keys = [f"k{i}".encode() for i in range(10)]
    await produce(kafka, topic, [(k, f"v{n}".encode()) for n in range(20) for k in keys])
    deadline = time.monotonic() + 60
    ticks = 0
    while True:
        # the active segment is never cleaned: appends after segment.ms roll it
        ticks += 1
        await produce(kafka, topic, [(b"tick", str(ticks).encode())])
        read = await read_all(kafka, topic, 1)
        latest = [(key, value) for key, value, _ in read.records if key != b"tick"]
        if latest == [(k, b"v19") for k in keys]:
            break
        assert time.monotonic() < deadline, f"not compacted in 60 s: {len(latest)} records"
        await asyncio.sleep(0.2)  # a tick at most every 200 ms, above segment.ms
    offsets = [offset for _, _, offset in read.records]
    assert offsets[-1] == 200 + ticks - 1  # offsets keep their numbers, with gaps between
    assert len(offsets) < offsets[-1] + 1
    print(
        f"\ncompacted: {len(offsets)} of {offsets[-1] + 1} records left; the gap-checking"
        f" reader re-fetched {read.gaps} times and read them in {read.seconds:.2f} s"
    )


async def test_a_three_node_cluster_survives_kill_9_of_a_node_and_heals(
    kafka_cluster: ApacheKafka, unique: str
) -> None:
    cluster = kafka_cluster
    bootstrap = cluster.bootstrap_servers
    topic = f"{unique}.replicated"
    await ensure_topics(bootstrap, [topic], partitions=3, replication_factor=3)
    for partition in await describe(bootstrap, topic):
        assert sorted(partition["replicas"]) == [1, 2, 3]
    await produce(bootstrap, topic, [(f"a{i}".encode(), b"a") for i in range(100)])

    leader = next(p["leader"] for p in await describe(bootstrap, topic) if p["partition"] == 0)
    victim = next(i for i, node in enumerate(cluster.nodes) if node.node_id == leader)
    cluster.kill(victim)
    survivors = ",".join(n.address for n in cluster.nodes if n.alive())
    # acks=all with min.insync.replicas=2: two live replicas of three still accept writes
    await produce(survivors, topic, [(f"b{i}".encode(), b"b") for i in range(100)])
    read = await read_all(survivors, topic, 3)
    assert sorted(key or b"" for key, _, _ in read.records) == sorted(
        [f"a{i}".encode() for i in range(100)] + [f"b{i}".encode() for i in range(100)]
    )

    restarted = time.monotonic()
    cluster.start_node(victim)
    deadline = time.monotonic() + 60
    while any(len(p["isr"]) < 3 for p in await describe(bootstrap, topic)):
        assert time.monotonic() < deadline, "the restarted node did not rejoin the ISR in 60 s"
        await asyncio.sleep(0.2)  # polls the ISR above
    print(
        f"\nApache Kafka, three nodes: started in {cluster.start_seconds:.1f} s,"
        f" RSS {cluster.rss_bytes() / MB:.0f} MB in all; node {leader} killed (-9),"
        f" back in every ISR {time.monotonic() - restarted:.1f} s after its restart"
    )


@needs_apache_kafka
def test_podium_broker_kind_kafka_serves_until_sigterm() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "podium", "broker", "--kind", "kafka", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        address = proc.stdout.readline().strip()  # printed once the broker answers
        assert address == f"{HOST}:{port}"
        assert "Apache Kafka" in proc.stderr.readline()
        assert proc.stderr.readline().strip() == "podium: ready"
        assert metadata_brokers(HOST, port) == 1
        asyncio.run(ensure_topics(address, ["cli-check"], partitions=2))
        described = asyncio.run(describe(address, "cli-check"))
        assert sorted(p["partition"] for p in described) == [0, 1]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not api_versions_round_trip(HOST, port)


def test_podium_broker_refuses_an_unknown_kind() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "podium", "broker", "--kind", "redpanda"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "podium: --kind must be tansu or kafka, not 'redpanda'"
