"""The triggered saga of examples/shop as `make demo` runs it, in both modes: its
deployment as `podium` processes on the embedded broker, the outside world as plain
aiokafka; every result comes back, the repeated order starts nothing new."""

from __future__ import annotations

import os

import orjson
import pytest

from podium.broker import EmbeddedBroker
from podium.demo import shop


@pytest.mark.parametrize("mode", ["orchestration", "choreography"])
def test_the_shop_example_runs_in_each_mode(mode: str, capfd: pytest.CaptureFixture[str]) -> None:
    with EmbeddedBroker() as embedded:
        env = {**os.environ, "PODIUM_BOOTSTRAP_SERVERS": embedded.bootstrap_servers}
        assert shop(mode, env) == 0
    back = {}
    for line in capfd.readouterr().out.splitlines():
        if line.startswith("  <- "):
            where, _, result = line[len("  <- ") :].partition(": ")
            back[where] = orjson.loads(result)
    tag = mode[:5]
    assert set(back) == {
        f"shop.order_results order-{tag}-1",
        f"shop.order_results order-{tag}-2",
        f"shop.shipments order-{tag}-1:on_complete:0",
    }
    approved = back[f"shop.order_results order-{tag}-1"]
    assert (approved["state"], approved["mode"]) == ("Succeeded", mode)
    assert approved["output"]["charge_id"] == f"c-order-{tag}-1"
    refused = back[f"shop.order_results order-{tag}-2"]
    assert (refused["state"], refused["output"]["approved"]) == ("Succeeded", False)
    assert refused["output"]["charge_id"] is None
    shipped = back[f"shop.shipments order-{tag}-1:on_complete:0"]
    assert (shipped["workflow"], shipped["state"]) == ("shipping", "Succeeded")
