"""What an event binding costs: its extra latency and the gateway's matched records/s.

On a fresh broker (the embedded tansu; Apache Kafka with `--broker`), a conductor
and a trigger gateway run as `podium` processes over one definition, `bench-bound`:
one task, and an event binding on `bench.orders` whose `id:` is the record's `n`. The driver (this process) measures:

- `plain`: the plain trigger path, `Client.trigger` (what `podium trigger` sends)
  to the first command on `podium.tasks.bench.step.commands`, one workflow at a
  time: trigger record -> conductor -> command;
- `bound`: a foreign JSON record sent with plain aiokafka to `bench.orders`, to the
  first command out: record -> gateway -> trigger record -> conductor -> command.
  `bound - plain` per percentile is the extra latency the binding adds (one hop
  and the gateway's filter, mapping and schema check);
- `matched/s`: the conductor is stopped, `--burst` records are sent to
  `bench.orders` as fast as one producer goes (batched), and the triggers the gateway
  writes to `podium.triggers` are counted: matched records per second from the first
  record sent to the last trigger seen (the gateway sustaining a backlog; the
  records/s it was offered is given beside it).

    python benchmarks/triggers.py [--samples 200] [--burst 20000] [--broker apache-kafka]

Adds its run to `results/triggers.json` (the last 10 runs are kept).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
from harness import RESULTS_DIR, machine, percentile, table  # noqa: E402

from podium.apache_kafka import ApacheKafka, unavailable  # noqa: E402
from podium.broker import EmbeddedBroker  # noqa: E402
from podium.client import Client, prepare_topics  # noqa: E402
from podium.events import Mode, topics  # noqa: E402
from podium.runtime.settings import Settings  # noqa: E402
from podium.workflow.loader import load_definitions  # noqa: E402

TOPIC = "bench.orders"
TASK = "bench.step"
DEFINITION = f"""\
name: bench-bound
version: 1
input_schema: {{type: object, required: [n], properties: {{n: {{type: integer}}}}}}
triggers:
  - event:
      topic: {TOPIC}
      filter: event.data.n >= 0
      input: {{n: "${{ event.data.n }}"}}
      id: "${{ event.data.tag + '-' + string(event.data.n) }}"
tasks:
  - {{id: step, type: {TASK}, input: {{n: "${{ workflow.input.n }}"}}}}
"""
KEPT_RUNS = 10
ENV = {
    "PODIUM_LOG_LEVEL": "WARNING",
    "PODIUM_CONSUMER__SESSION_TIMEOUT_MS": "3000",
    "PODIUM_CONSUMER__HEARTBEAT_INTERVAL_MS": "500",
}


class Proc:
    """A `podium` process; `ready` waits for its `podium: ready` line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "podium", *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stderr=subprocess.PIPE,
            text=True,
        )
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if "podium: ready" in line:
                self._ready.set()
            else:
                sys.stderr.write(line)
        self._ready.set()

    def ready(self) -> None:
        if not self._ready.wait(120) or self.process.poll() is not None:
            raise RuntimeError(f"{self.process.args} not ready")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def partitions_of(topic: str) -> list[TopicPartition]:
    """A topic's partitions: Podium creates every topic at the settings' count (on Kafka
    a consumer's metadata may not list a topic it has not subscribed to)."""
    return [TopicPartition(topic, n) for n in range(Settings().partitions)]


class Commands:
    """Reads the first task's commands from the end; `seen(id)` awaits one workflow's."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5
        )
        self.topic = topic
        self._waiting: dict[str, asyncio.Future[float]] = {}
        self.count = 0

    async def start(self) -> None:
        await self.consumer.start()
        partitions = partitions_of(self.topic)
        self.consumer.assign(partitions)
        # positions from the high watermark of each partition (right on tansu)
        await self.consumer.seek_to_end(*partitions)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            for records in (await self.consumer.getmany(timeout_ms=100)).values():
                now = time.perf_counter()
                for record in records:
                    self.count += 1
                    key = (record.key or b"").decode()
                    found = self._waiting.pop(key, None)
                    if found is not None and not found.done():
                        found.set_result(now)

    def expect(self, workflow_id: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[workflow_id] = future
        return future

    async def stop(self) -> None:
        self._task.cancel()
        await self.consumer.stop()


def stats(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {f"p{q}": round(percentile(ms, q), 2) for q in (50, 95, 99)}


async def latencies(bootstrap: str, folder: str, samples: int) -> dict[str, list[float]]:
    settings = Settings(bootstrap_servers=bootstrap)
    definition = next(iter(load_definitions(Path(folder)).values()))
    commands = Commands(bootstrap, topics.commands(TASK))
    await commands.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    found: dict[str, list[float]] = {"plain": [], "bound": []}
    try:
        async with Client(bootstrap, settings) as client:
            for i in range(samples + 10):  # the first 10 of each path warm up
                wid = f"plain-{i}"
                seen = commands.expect(wid)
                start = time.perf_counter()
                await client.trigger(definition, {"n": i}, workflow_id=wid, mode=Mode.ORCHESTRATION)
                plain = await asyncio.wait_for(seen, 30) - start
                seen = commands.expect(f"bound-{i}")
                start = time.perf_counter()
                await producer.send_and_wait(TOPIC, orjson.dumps({"tag": "bound", "n": i}))
                bound = await asyncio.wait_for(seen, 30) - start
                if i >= 10:
                    found["plain"].append(plain)
                    found["bound"].append(bound)
    finally:
        await producer.stop()
        await commands.stop()
    return found


async def burst(bootstrap: str, n: int) -> dict[str, Any]:
    """Send n records at once; count the gateway's triggers until all are there."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5
    )
    await consumer.start()
    partitions = partitions_of(topics.TRIGGERS)
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    wanted = {f"burst-{i}".encode() for i in range(n)}
    seen: set[bytes] = set()

    async def count() -> float:
        while len(seen) < n:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                seen.update(r.key for r in records if r.key in wanted)
        return time.perf_counter()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        counter = asyncio.create_task(count())
        start = time.perf_counter()
        acks = [
            await producer.send(TOPIC, orjson.dumps({"tag": "burst", "n": i})) for i in range(n)
        ]
        await asyncio.gather(*acks)
        sent = time.perf_counter()
        ended = await asyncio.wait_for(counter, 600)
    finally:
        await producer.stop()
        await consumer.stop()
    return {
        "records": n,
        "offered_per_s": round(n / (sent - start)),
        "matched_per_s": round(n / (ended - start)),
        "seconds": round(ended - start, 2),
    }


@contextlib.contextmanager
def fresh_broker(kind: str) -> Iterator[str]:
    """A new broker's bootstrap servers: the embedded tansu, or Apache Kafka from its jars."""
    if kind == "tansu":
        with EmbeddedBroker() as embedded:
            yield embedded.bootstrap_servers
        return
    reason = unavailable()
    if reason:
        raise SystemExit(f"Apache Kafka: {reason}")
    with ApacheKafka(nodes=1) as kafka:
        yield kafka.bootstrap_servers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--burst", type=int, default=20_000)
    parser.add_argument("--broker", choices=["tansu", "apache-kafka"], default="tansu")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "triggers.json")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, fresh_broker(arguments.broker) as bootstrap:
        (Path(folder) / "bench-bound.yaml").write_text(DEFINITION)
        settings = Settings(bootstrap_servers=bootstrap)
        asyncio.run(prepare_topics(bootstrap, settings, {TASK}))
        env = {**ENV, "PODIUM_BOOTSTRAP_SERVERS": bootstrap, "PODIUM_DEFINITIONS": folder}
        conductor = Proc(["conductor"], env)
        gateway = Proc(["triggers"], env)
        conductor.ready()
        gateway.ready()
        try:
            found = asyncio.run(latencies(bootstrap, folder, arguments.samples))
            conductor.stop()
            matched = asyncio.run(burst(bootstrap, arguments.burst))
        finally:
            for proc in (conductor, gateway):
                if proc.process.poll() is None:
                    proc.stop()
    plain, bound = stats(found["plain"]), stats(found["bound"])
    extra = {q: round(bound[q] - plain[q], 2) for q in plain}
    rows = [
        {"path": "plain trigger -> first command", **plain},
        {"path": "bound record -> first command", **bound},
        {"path": "extra (bound - plain)", **extra},
    ]
    print(f"latency, ms ({arguments.samples} workflows one at a time, {arguments.broker}, W = 5)")
    print(table(rows, ["path", "p50", "p95", "p99"]))
    print(
        f"gateway: {matched['matched_per_s']:,} matched records/s "
        f"({matched['records']:,} records offered at {matched['offered_per_s']:,}/s)"
    )
    run = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "broker": arguments.broker,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "samples": arguments.samples,
        "latency_ms": {"plain": plain, "bound": bound, "extra": extra},
        "gateway": matched,
    }
    # the runs so far are kept (the last KEPT_RUNS): on a shared machine one run says little
    out = arguments.out
    document = json.loads(out.read_text()) if out.exists() else {}
    runs = [*document.get("runs", []), run][-KEPT_RUNS:]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "runs": runs}, indent=2) + "\n")
    print(f"written to {arguments.out}")


if __name__ == "__main__":
    main()
