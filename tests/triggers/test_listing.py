"""`podium triggers list --metrics-url`: each binding's counts, read from running gateways."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from prometheus_client import start_http_server
from typer.testing import CliRunner

from podium import metrics
from podium.cli import app
from podium.triggers.listing import binding_counts
from tests.triggers.conftest import FLOWS


@pytest.fixture
def gateway_metrics() -> Iterator[str]:
    """This process's /metrics, as a gateway serves them."""
    server, thread = start_http_server(0, addr="127.0.0.1")
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_binding_counts_are_listed_from_a_gateways_metrics(gateway_metrics: str) -> None:
    before = binding_counts([gateway_metrics]).get("ordered#0", {})
    metrics.binding_record("ordered#0", "matched")
    metrics.binding_record("ordered#0", "matched")
    metrics.binding_record("ordered#0", "filtered")
    args = ["triggers", "list", "--definitions", str(FLOWS), "--json"]
    listed = CliRunner().invoke(app, [*args, "--metrics-url", gateway_metrics])
    assert listed.exit_code == 0, listed.output
    bindings = orjson.loads(listed.stdout)["bindings"]
    (binding,) = [b for b in bindings if b["workflow"] == "ordered"]
    assert binding["counts"] == {
        "matched": before.get("matched", 0) + 2,
        "filtered": before.get("filtered", 0) + 1,
        "dead_lettered": before.get("dead_lettered", 0),
    }
    # twice the same gateway: summed
    assert binding_counts([gateway_metrics] * 2)["ordered#0"]["matched"] == 2 * (
        before.get("matched", 0) + 2
    )


def test_an_unreachable_gateway_lists_without_counts() -> None:
    args = ["triggers", "list", "--definitions", str(FLOWS), "--json"]
    listed = CliRunner().invoke(app, [*args, "--metrics-url", "http://127.0.0.1:9/metrics"])
    assert listed.exit_code == 0, listed.output
    assert "binding counts unknown" in listed.stderr
    assert all("counts" not in b for b in orjson.loads(listed.stdout)["bindings"])
