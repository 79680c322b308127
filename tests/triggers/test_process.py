"""`podium triggers` as a real process on the embedded broker, beside a service and a
conductor: once it says `podium: ready`, a foreign producer's record starts a workflow."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from podium.broker import EmbeddedBroker
from podium.client import Client
from podium.runtime.settings import Settings
from tests.processes.procs import Proc, podium

FLOWS = str(Path(__file__).parent / "flows")


def test_the_gateway_process_starts_a_workflow_from_a_foreign_record() -> None:
    with EmbeddedBroker() as embedded:
        bootstrap = embedded.bootstrap_servers
        env = {
            "PODIUM_BOOTSTRAP_SERVERS": bootstrap,
            "PODIUM_DEFINITIONS": FLOWS,
            "PODIUM_CONSUMER__SESSION_TIMEOUT_MS": "3000",
            "PODIUM_CONSUMER__HEARTBEAT_INTERVAL_MS": "500",
        }
        with (
            Proc(["service", "tests.e2e.services:services"], env) as service,
            Proc(["conductor"], env) as conductor,
            Proc(["triggers"], env) as gateway,
        ):
            for proc in (service, conductor, gateway):
                proc.wait_ready()
            ended = asyncio.run(_order_in(bootstrap, "order-900"))
            assert (ended.state, ended.output) == ("Succeeded", {"sku": "sku-9"})
            listed = podium("triggers", "list", "--json", env=env)
            assert listed.returncode == 0, listed.stderr
            bindings = orjson.loads(listed.stdout)["bindings"]
            assert ("ordered", "shop.orders") in [(b["workflow"], b["topic"]) for b in bindings]
            for proc in (gateway, conductor, service):
                assert proc.terminate() == 0


async def _order_in(bootstrap: str, workflow_id: str):  # type: ignore[no-untyped-def]
    async with Client(bootstrap, Settings(bootstrap_servers=bootstrap)) as client:
        ended = client.expect(workflow_id)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            body = {"order_id": 900, "total": 9, "sku": "sku-9"}
            await producer.send_and_wait("shop.orders", orjson.dumps(body), key=b"x")
        finally:
            await producer.stop()
        return await asyncio.wait_for(ended, 30)
