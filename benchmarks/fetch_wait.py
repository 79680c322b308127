"""What `fetch_max_wait_ms` (W) costs on tansu: per-hop latency against idle CPU.

tansu does not wake a parked fetch when data arrives; it re-reads storage at
0, W/2, 3W/4, ... of W, and an empty fetch returns after W. So a small W buys
latency with polling. For each W, in a few passes:

- hop latency: one producer -> consumer hop over ~200 sequential messages (send
  one, wait until the consumer sees it, next), p50/p95/p99, with the send either
  *random* in the consumer's fetch cycle (sleep uniform(0, W) first: what a hop
  in a chain sees) or *aligned* (back to back: the send lands just after the
  consumer's next fetch parked, so it waits ~W/2);
- with `neighbours` other consumer processes idly polling the same broker at
  the same W (a deployment has many consumers; their polling slows every hop);
- idle CPU: this consumer process's CPU per wall second while it polls an empty
  topic, and the broker's (when this script started it); 1000 = one core.

    python benchmarks/fetch_wait.py [--waits 1,5,20,100,500] [--n 200] [--idle-s 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from floor import cpu_seconds
from harness import RESULTS_DIR, machine, percentile, table

from podium.broker import EmbeddedBroker
from podium.runtime.kafka import ensure_topics, make_consumer, make_producer
from podium.runtime.settings import ConsumerSettings, Settings

SCRIPT = str(Path(__file__).resolve())
PASSES = (("random", 0), ("aligned", 0), ("random", 5))  # (phase, neighbours)
COLUMNS = (
    "fetch_max_wait_ms",
    "phase",
    "neighbours",
    "hop_p50_ms",
    "hop_p95_ms",
    "hop_p99_ms",
    "consumer_cpu_ms_per_s",
    "broker_cpu_ms_per_s",
)


@dataclass
class Probe:
    bootstrap: str
    n: int
    idle_s: float
    partitions: int
    broker_pid: int | None


async def assigned_consumer(bootstrap: str, topic: str, partitions: int, wait: int):  # type: ignore[no-untyped-def]
    consumer = make_consumer(
        bootstrap, group_id=None, settings=ConsumerSettings(fetch_max_wait_ms=wait)
    )
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    for tp in tps:  # resolve positions before anything is sent
        await consumer.position(tp)
    return consumer


async def _until_seen(consumer: AIOKafkaConsumer, key: bytes) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=1_000)
        if any(r.key == key for records in batches.values() for r in records):
            return


async def _idle(consumer: AIOKafkaConsumer, probe: Probe) -> dict[str, float]:
    """CPU ms per wall second of this process (and the broker) while the consumer polls."""
    pid = probe.broker_pid
    broker_before = cpu_seconds(pid) if pid else 0.0
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    while time.perf_counter() < wall_before + probe.idle_s:
        await consumer.getmany(timeout_ms=200)
    wall = time.perf_counter() - wall_before
    out = {"consumer_cpu_ms_per_s": round((time.process_time() - cpu_before) * 1000 / wall, 1)}
    if pid:
        out["broker_cpu_ms_per_s"] = round((cpu_seconds(pid) - broker_before) * 1000 / wall, 1)
    return out


async def hops(probe: Probe, wait: int, phase: str) -> tuple[list[float], dict[str, float]]:
    topic = f"fetchwait-{wait}-{uuid.uuid4().hex[:6]}"  # fresh and empty
    await ensure_topics(probe.bootstrap, [topic], probe.partitions)
    producer = make_producer(probe.bootstrap)
    await producer.start()
    consumer = await assigned_consumer(probe.bootstrap, topic, probe.partitions, wait)
    out = []
    try:
        for i in range(probe.n + 5):  # the first few warm connections and fetch sessions
            if phase == "random":
                await asyncio.sleep(random.uniform(0, wait) / 1000)
            key = f"m{i}".encode()
            start = time.perf_counter()
            delivery = await producer.send(topic, value=b'{"n":%d}' % i, key=key)
            await _until_seen(consumer, key)
            await delivery
            if i >= 5:
                out.append((time.perf_counter() - start) * 1000)
        idle = await _idle(consumer, probe)
    finally:
        await consumer.stop()
        await producer.stop()
    return out, idle


@contextlib.asynccontextmanager
async def neighbours(probe: Probe, wait: int, count: int):  # type: ignore[no-untyped-def]
    """`count` processes each polling an empty topic at W until terminated."""
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            SCRIPT,
            "idle",
            probe.bootstrap,
            str(wait),
            str(probe.partitions),
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(count)
    ]
    try:
        for proc in procs:  # each prints one line once it polls
            assert proc.stdout is not None
            await asyncio.wait_for(proc.stdout.readline(), 30)
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            await proc.wait()


async def idle_main(bootstrap: str, wait: int, partitions: int) -> None:
    await ensure_topics(bootstrap, ["fetchwait-idle"], partitions)
    consumer = await assigned_consumer(bootstrap, "fetchwait-idle", partitions, wait)
    print("polling", flush=True)
    while True:
        await consumer.getmany(timeout_ms=1_000)


async def run(probe: Probe, waits: list[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if probe.broker_pid:
        before = cpu_seconds(probe.broker_pid)
        await asyncio.sleep(probe.idle_s)
        cpu = (cpu_seconds(probe.broker_pid) - before) * 1000 / probe.idle_s
        rows.append({"fetch_max_wait_ms": "no consumer", "broker_cpu_ms_per_s": round(cpu, 1)})
    for wait in waits:
        for phase, count in PASSES:
            async with neighbours(probe, wait, count):
                latencies, idle = await hops(probe, wait, phase)
            row = {
                "fetch_max_wait_ms": wait,
                "phase": phase,
                "neighbours": count,
                "hop_p50_ms": round(percentile(latencies, 50), 2),
                "hop_p95_ms": round(percentile(latencies, 95), 2),
                "hop_p99_ms": round(percentile(latencies, 99), 2),
                **idle,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--waits", type=lambda s: [int(x) for x in s.split(",")], default=[1, 5, 20, 100, 500]
    )
    p.add_argument("--n", type=int, default=200, help="sequential messages per pass")
    p.add_argument("--idle-s", type=float, default=5.0, help="idle CPU window per pass")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "fetch_wait.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    configured = Settings().bootstrap_servers
    with contextlib.ExitStack() as stack:
        if configured:
            bootstrap, pid = configured, None
        else:
            broker = stack.enter_context(EmbeddedBroker())
            bootstrap = broker.bootstrap_servers
            pid = broker._process.pid if broker._process else None
        probe = Probe(bootstrap, args.n, args.idle_s, args.partitions, pid)
        rows = asyncio.run(run(probe, args.waits))
    doc = {
        "broker": "external" if configured else "embedded tansu",
        "partitions": args.partitions,
        "n": args.n,
        "idle_s": args.idle_s,
        "machine": machine(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {args.out} (CPU in ms per wall second; 1000 = one core)")
    print(table(rows, COLUMNS))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["idle"]:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(idle_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    else:
        sys.exit(main())
