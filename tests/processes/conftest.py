"""A fresh broker per test and the environment every Podium process of the test shares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.broker import EmbeddedBroker

FLOWS = Path(__file__).resolve().parents[1] / "e2e" / "flows"
#: tansu moves a dead member's partitions after about 1.5x the session timeout
SESSION_MS = "3000"


@pytest.fixture
def broker() -> Iterator[str]:
    with EmbeddedBroker() as embedded:  # a fresh broker: no state from other tests
        yield embedded.bootstrap_servers


@pytest.fixture
def env(broker: str, tmp_path: Path) -> dict[str, str]:
    return {
        "PODIUM_BOOTSTRAP_SERVERS": broker,
        "PODIUM_DEFINITIONS": str(FLOWS),
        "PODIUM_CONSUMER__SESSION_TIMEOUT_MS": SESSION_MS,
        "PODIUM_CONSUMER__HEARTBEAT_INTERVAL_MS": "500",
        "PODIUM_TEST_CALLS": str(tmp_path / "calls.txt"),
    }
