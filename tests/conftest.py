"""Shared fixtures: a real Kafka-protocol broker for integration tests.

`kafka` is session scoped and parametrised: the embedded tansu broker always,
Apache Kafka from its jars when java >= 17 and the fetched jars are here
(`make kafka-jars`), and testcontainers' Kafka (KRaft) when a Docker engine is
reachable. `kafka_cluster` is a three-node Apache Kafka cluster per test module
(idle, its three JVMs still take ~12 % of a core), healed (every node running)
before each test that uses it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from podium.apache_kafka import ApacheKafka, unavailable
from podium.broker import EmbeddedBroker
from podium.runtime import memory
from podium.runtime.settings import Settings


def _docker_reachable() -> str | None:
    """None when a Docker engine answers, else the reason to skip."""
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    if probe.returncode != 0:
        return "no Docker engine reachable (docker info failed)"
    return None


BROKERS = ["embedded", "apache-kafka"]
if os.environ.get("PODIUM_TEST_CONTAINERS", "auto") != "off":
    BROKERS.append("kafka-container")


#: addresses of brokers with idempotent producers (Apache Kafka; tansu has none)
IDEMPOTENT: set[str] = set()


def settings_for(bootstrap_servers: str, **overrides: Any) -> Settings:
    """Podium's settings for a deployment on this broker."""
    return Settings(
        bootstrap_servers=bootstrap_servers,
        idempotent_producer=bootstrap_servers in IDEMPOTENT,
        **overrides,
    )


class Brokers:
    """The real brokers of this test session, each started on first use and kept."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack
        self._started: dict[str, str] = {}

    def get(self, kind: str) -> str:
        """Bootstrap servers of a running broker of `kind` (one of `BROKERS`)."""
        if kind not in self._started:
            self._started[kind] = self._stack.enter_context(_start(kind))
        return self._started[kind]


@pytest.fixture(scope="session")
def brokers() -> Iterator[Brokers]:
    with contextlib.ExitStack() as stack:
        yield Brokers(stack)


@pytest.fixture(scope="session", params=BROKERS)
def kafka(request: pytest.FixtureRequest, brokers: Brokers) -> str:
    """Bootstrap servers of a running broker."""
    return brokers.get(request.param)


#: where whole deployments run: the in-memory bus, then each real broker
TRANSPORTS = ["memory", *BROKERS]


@pytest.fixture(scope="module", params=TRANSPORTS)
def transport(request: pytest.FixtureRequest, brokers: Brokers) -> Iterator[str]:
    """Bootstrap servers: a fresh in-memory bus per module, or a running broker."""
    if request.param != "memory":
        yield brokers.get(request.param)
        return
    address = f"memory://{request.module.__name__}"
    yield address
    memory.drop(address)


@contextlib.contextmanager
def _start(kind: str) -> Iterator[str]:
    if kind == "embedded":
        with EmbeddedBroker() as broker:
            yield broker.bootstrap_servers
        return
    if kind == "apache-kafka":
        with _apache_kafka(nodes=1) as broker:
            IDEMPOTENT.add(broker.bootstrap_servers)
            yield broker.bootstrap_servers
        return
    reason = _docker_reachable()
    if reason:
        pytest.skip(f"testcontainers Kafka: {reason}")
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer().with_kraft() as container:
        yield container.get_bootstrap_server()


def _apache_kafka(nodes: int) -> ApacheKafka:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    return ApacheKafka(nodes)


@pytest.fixture(scope="module")
def _kafka_cluster() -> Iterator[ApacheKafka]:
    with _apache_kafka(nodes=3) as cluster:
        yield cluster


@pytest.fixture
def kafka_cluster(_kafka_cluster: ApacheKafka) -> ApacheKafka:
    """A three-node Apache Kafka cluster (RF 3, min.insync.replicas=2), every node running.

    Tests may kill, stop and restart its nodes; a node left down is started again
    on its log dir before the next test.
    """
    for index, node in enumerate(_kafka_cluster.nodes):
        if not node.alive():
            _kafka_cluster.start_node(index)
    return _kafka_cluster


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> str:
    """A name unique to the test, for topics and groups on the shared broker."""
    return request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:60]
