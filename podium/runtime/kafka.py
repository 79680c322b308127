"""The Kafka client interface every runtime part uses, and its two implementations.

`make_producer`, `make_consumer` and `ensure_topics` give aiokafka clients tuned
for tansu and Kafka, connected as `connection_options` says (SASL, TLS), or, for a `memory://<name>` address, the in-memory bus
(`podium.runtime.memory`) that keeps the same contract. `Producer` and
`Consumer` name the part of aiokafka's API Podium relies on: nothing above this
module reaches past them. Also here: consumed records turned into `RawRecord`s,
and the gap-safe reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.metadata import MetadataRequest

from podium.events import KafkaRecord, RawRecord, topics
from podium.runtime import memory
from podium.runtime.settings import ConsumerSettings, KafkaConnection, Settings, kafka_connection

log = logging.getLogger("podium.kafka")

Record = memory.Record


class Producer(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def flush(self) -> None: ...
    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Any = None,
    ) -> asyncio.Future[Any]: ...
    async def send_and_wait(self, topic: str, value: bytes | None = None, **kwargs: Any) -> Any: ...


class Consumer(Protocol):
    def subscribe(
        self, topics: list[str], listener: ConsumerRebalanceListener | None = None
    ) -> None: ...
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def assignment(self) -> set[TopicPartition]: ...
    def partitions_for_topic(self, topic: str) -> set[int] | None: ...
    def pause(self, *partitions: TopicPartition) -> None: ...
    def resume(self, *partitions: TopicPartition) -> None: ...
    def paused(self) -> set[TopicPartition]: ...
    async def position(self, tp: TopicPartition) -> int: ...
    def seek(self, tp: TopicPartition, offset: int) -> None: ...
    async def seek_to_beginning(self, *partitions: TopicPartition) -> Any: ...
    async def seek_to_end(self, *partitions: TopicPartition) -> Any: ...
    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...
    def highwater(self, tp: TopicPartition) -> int | None: ...
    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...
    async def committed(self, tp: TopicPartition) -> int | None: ...
    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Record]]: ...


def connection_options(connection: KafkaConnection | None = None) -> dict[str, Any]:
    """aiokafka's keyword arguments for how to connect: the one place they are made.

    Without `connection`, from this process's environment (`PODIUM_SECURITY_PROTOCOL`,
    `PODIUM_SASL_*`, `PODIUM_SSL_*`): every client of a process connects alike, and
    the roles need not carry secrets around.
    """
    c = connection if connection is not None else kafka_connection()
    options: dict[str, Any] = {"security_protocol": c.security_protocol}
    if c.security_protocol.endswith("SSL"):
        try:
            options["ssl_context"] = create_ssl_context(
                cafile=c.ssl_cafile,
                certfile=c.ssl_certfile,
                keyfile=c.ssl_keyfile,
                password=c.key_secret,
            )
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"cannot load the PODIUM_SSL_* files: {exc}") from None
    if c.security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = c.sasl_mechanism
        options["sasl_plain_username"] = c.sasl_username
        options["sasl_plain_password"] = c.sasl_secret
    return options


def make_producer(
    bootstrap_servers: str, *, connection: KafkaConnection | None = None, **overrides: Any
) -> Producer:
    if memory.is_memory(bootstrap_servers):
        return memory.MemoryProducer(bootstrap_servers)
    # tansu has no idempotent producer; acks=all is still the durable choice on Kafka.
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        **connection_options(connection),
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": 0,
        "max_batch_size": 256 * 1024,
        **overrides,
    }
    producer: Producer = AIOKafkaProducer(**options)
    return producer


#: tansu answers a parked fetch only when it re-reads storage, at 0, W/2, 3W/4... of the
#: wait W, not when data arrives: a hop costs about W/2 there, so W must be small
PARKED_FETCH_WAIT_MS = 5
#: Apache Kafka answers a parked fetch as soon as data arrives, so W only bounds an idle
#: poll; its own default spares the ~200 empty fetches a second per consumer that 5 ms
#: costs, on the broker and in the client (orchestration on Kafka: 6.8 -> 4.7 ms of CPU a
#: workflow, p50 99 -> 52 ms; benchmarks/README.md)
WAKING_FETCH_WAIT_MS = 500
#: the brokers (bootstrap addresses) this process found to be Apache Kafka
_waking: set[str] = set()
#: what `kafka-storage random-uuid` makes, the cluster id of every Apache Kafka cluster
_KAFKA_CLUSTER_ID = re.compile(r"[A-Za-z0-9_-]{22}")


async def learn_broker(bootstrap_servers: str) -> bool:
    """Ask the broker for its cluster id; when it is Apache Kafka's kind, every consumer
    this process makes afterwards with no `fetch_max_wait_ms` set parks its fetches for
    `WAKING_FETCH_WAIT_MS`, not `PARKED_FETCH_WAIT_MS`. True if it is.

    Anything else (tansu, whose id is `tansu_cluster`; a broker that cannot be asked)
    keeps the small wait, which is right on every broker, only costlier.
    """
    if memory.is_memory(bootstrap_servers):
        return False
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, **connection_options())
    try:
        await client.bootstrap()
        response = await client.send(client.get_random_node(), MetadataRequest([]))
    except KafkaError as exc:
        log.info("cannot ask %s for its cluster id (%s): short fetch waits", bootstrap_servers, exc)
        return False
    finally:
        await client.close()
    cluster_id = getattr(response, "cluster_id", None) or ""
    if _KAFKA_CLUSTER_ID.fullmatch(cluster_id):
        _waking.add(bootstrap_servers)
        return True
    return False


def fetch_wait_ms(bootstrap_servers: str, settings: ConsumerSettings) -> int:
    """The fetch wait of a consumer: as set, or as suits the broker (`learn_broker`)."""
    if settings.fetch_max_wait_ms is not None:
        return settings.fetch_max_wait_ms
    return WAKING_FETCH_WAIT_MS if bootstrap_servers in _waking else PARKED_FETCH_WAIT_MS


def make_consumer(
    bootstrap_servers: str,
    *topics: str,
    group_id: str | None,
    settings: ConsumerSettings | None = None,
    connection: KafkaConnection | None = None,
    **overrides: Any,
) -> Consumer:
    s = settings or ConsumerSettings()
    if memory.is_memory(bootstrap_servers):
        return memory.MemoryConsumer(
            bootstrap_servers,
            *topics,
            group_id=group_id,
            max_poll_records=s.max_poll_records,
            **overrides,
        )
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        **connection_options(connection),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": fetch_wait_ms(bootstrap_servers, s),
        "session_timeout_ms": s.session_timeout_ms,
        "heartbeat_interval_ms": s.heartbeat_interval_ms,
        "max_poll_records": s.max_poll_records,
        "metadata_max_age_ms": s.metadata_max_age_ms,
        **overrides,
    }
    consumer: Consumer = AIOKafkaConsumer(*topics, **options)
    return consumer


async def ensure_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    partitions: int,
    *,
    replication_factor: int = 1,
    configs: Mapping[str, str] | None = None,
    connection: KafkaConnection | None = None,
) -> None:
    """Create topics explicitly, all with one partition count (co-partitioning).

    `replication_factor` 3 suits a three-broker Kafka cluster; `configs` are topic
    configs such as `{"cleanup.policy": "compact"}` for a changelog (Kafka applies
    them; tansu accepts and ignores them). Topics that exist already are left as
    they are (tansu cannot add partitions).
    """
    wanted = sorted(set(names))
    if memory.is_memory(bootstrap_servers):
        await memory.ensure_topics(bootstrap_servers, wanted, partitions)
        return
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, **connection_options(connection)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=replication_factor,
                topic_configs=dict(configs or {}),
            )
            for name in wanted
            if name not in existing
        ]
        if new:
            # a concurrent creator may win the race: same count by contract
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
    finally:
        await admin.close()


COMPACTED = {
    "cleanup.policy": "compact",
    # Kafka never compacts the active segment, and rolls one after 7 days by default: a
    # restore would read a week of snapshots. Hourly segments bound what it reads to the
    # live keys plus about an hour of changes.
    "segment.ms": str(3_600_000),
    # A tombstone (an ended id forgotten) is kept after compaction for this long, 24 h by
    # default: at 40 workflows/s, 3.5 million tombstones a restore reads. An hour is
    # plenty for a reader that is mid-restore to see it (a 20-minute soak at 40/s left
    # 42,019 of them, growing one per workflow; benchmarks/README.md).
    "delete.retention.ms": str(3_600_000),
}


async def create_topics(bootstrap_servers: str, names: Iterable[str], settings: Settings) -> None:
    """Podium's own topics, at the deployment's partitions and replication; changelogs
    compacted, so that on Kafka a restore reads one snapshot per live key."""
    wanted = set(names)
    changelogs = {name for name in wanted if topics.is_changelog(name)}
    for group, configs in ((wanted - changelogs, None), (changelogs, COMPACTED)):
        if group:
            await ensure_topics(
                bootstrap_servers,
                group,
                settings.partitions,
                replication_factor=settings.replication_factor,
                configs=configs,
            )


async def partitions_of(consumer: Consumer, topic: str) -> list[TopicPartition]:
    """Every partition of a topic that exists (its metadata may take a moment to arrive)."""
    for _ in range(50):
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if isinstance(consumer, AIOKafkaConsumer):
            await consumer._client.force_metadata_update()
    raise RuntimeError(f"topic {topic} has no partitions")


def raw_record(record: ConsumerRecord[bytes, bytes]) -> RawRecord:
    return RawRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=list(record.headers or ()),
    )


async def send(
    producer: Producer, topic: str, record: KafkaRecord, partition: int | None = None
) -> asyncio.Future[Any]:
    """Queue a record and return its delivery future without waiting for the broker.

    The caller awaits the futures (or flushes) once per batch, never per record.
    """
    future: asyncio.Future[Any] = await producer.send(
        topic, value=record.value, key=record.key, headers=record.headers, partition=partition
    )
    return future


#: how often a gap is re-fetched before it is accepted as real (compaction, markers)
GAP_RETRIES = 200


class ContiguousReader:
    """`getmany` that never skips a record the broker has not made visible yet.

    Measured on tansu 0.6 (the embedded broker): with several producers appending
    to one partition, a live consumer's fetch can return offset N+2 while N and
    N+1 — assigned to another producer's batch still being written — are not
    there yet; the consumer's position then moves past them for good (5-10 of
    20,000 records lost in `tests/integration/test_tansu_gaps.py`'s scenario).
    Offsets of a non-compacted, non-transactional topic are contiguous, so a jump
    is such a gap: drop the records after it, seek back, and fetch again.
    """

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self._next: dict[TopicPartition, int] = {}
        self._retries: dict[TopicPartition, int] = {}
        #: partitions whose state is being rebuilt: nothing of theirs is handed out
        self._held: set[TopicPartition] = set()
        #: how many gaps were re-fetched (a figure for the notes and benchmarks)
        self.gaps = 0

    @contextlib.asynccontextmanager
    async def restoring(self, partitions: set[TopicPartition]) -> AsyncIterator[None]:
        """Hand out no record of newly assigned partitions until their state is rebuilt.

        aiokafka starts fetching a new assignment before the rebalance listener returns,
        so without this a record could be processed before the state it applies to (or
        the ledger that says it already ran) is back.
        """
        self._held |= partitions
        self.consumer.pause(*partitions)
        try:
            yield
        finally:
            self._held -= partitions
            await self.track(partitions)
            self.consumer.resume(*(partitions & self.consumer.assignment()))

    def resume(self) -> None:
        """Resume what backpressure paused, but not what is being restored."""
        self.consumer.resume(*(set(self.consumer.paused()) - self._held))

    async def track(self, partitions: Iterable[TopicPartition]) -> None:
        """Start checking these partitions from the consumer's current position."""
        for tp in partitions:
            self._next[tp] = await self.consumer.position(tp)
            self._retries.pop(tp, None)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self._next.pop(tp, None)
            self._retries.pop(tp, None)

    def lag(self) -> dict[str, int]:
        """Records not yet fetched per topic, over the assigned partitions: the consumer's
        high watermark (right on tansu too) less the next offset this reader hands out."""
        behind: dict[str, int] = {}
        for tp in self.consumer.assignment():
            position = self._next.get(tp)
            high = self.consumer.highwater(tp)
            if position is not None and high is not None:
                behind[tp.topic] = behind.get(tp.topic, 0) + max(0, high - position)
        return behind

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        batch = await self.consumer.getmany(
            *partitions, timeout_ms=timeout_ms, max_records=max_records
        )
        out = {}
        for tp, records in batch.items():
            keep = self._contiguous(tp, records)
            if keep:
                self._next[tp] = keep[-1].offset + 1
                out[tp] = keep
        return out

    def _contiguous(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> list[ConsumerRecord[bytes, bytes]]:
        expected = self._next.get(tp)
        if expected is None:
            return records
        for index, record in enumerate(records):
            if record.offset != expected + index:
                retries = self._retries.get(tp, 0)
                if retries >= GAP_RETRIES:
                    log.warning("accepting a gap in %s before offset %d", tp, record.offset)
                    self._retries[tp] = 0
                    return records
                self._retries[tp] = retries + 1
                self.gaps += 1
                self.consumer.seek(tp, expected + index)
                return records[:index]
        self._retries[tp] = 0
        return records
