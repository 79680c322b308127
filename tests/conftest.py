"""Shared fixtures: a real Kafka-protocol broker for integration tests.

`kafka` is session scoped and parametrised: the embedded tansu broker always,
and testcontainers' Kafka (KRaft) when a Docker engine is reachable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from podium.broker import EmbeddedBroker


def _docker_reachable() -> str | None:
    """None when a Docker engine answers, else the reason to skip."""
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    if probe.returncode != 0:
        return "no Docker engine reachable (docker info failed)"
    return None


BROKERS = ["embedded"]
if os.environ.get("PODIUM_TEST_CONTAINERS", "auto") != "off":
    BROKERS.append("kafka-container")


@pytest.fixture(scope="session", params=BROKERS)
def kafka(request: pytest.FixtureRequest) -> Iterator[str]:
    """Bootstrap servers of a running broker."""
    if request.param == "embedded":
        with EmbeddedBroker() as broker:
            yield broker.bootstrap_servers
        return
    reason = _docker_reachable()
    if reason:
        pytest.skip(f"testcontainers Kafka: {reason}")
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer().with_kraft() as container:
        yield container.get_bootstrap_server()


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> str:
    """A name unique to the test, for topics and groups on the shared broker."""
    return request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:60]
