"""The raw-aiokafka floor: the 5-step chain as five hand-written relays, no framework.

Topics step0..step5 (PODIUM_PARTITIONS each, default 8). Relay i is its own OS process and its
own consumer group: it consumes step<i> in `getmany` batches, decodes each
JSON value, stamps the step, re-encodes it and sends it to step<i+1> without
awaiting; it awaits the batch's delivery futures once, then commits. The
driver (this process) publishes workflows into step0 and reads step5 with a
manually assigned consumer, matching records by the ids it sent (tansu's
end offsets are wrong after batched produce, so whatever else it reads is
ignored).

    python benchmarks/floor.py                      # same as run.py --systems floor
    python benchmarks/floor.py relay BOOTSTRAP STEP W   # one relay (started by the driver)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import orjson
from aiokafka import TopicPartition
from harness import STEPS, closed_loop, percentile, sequential_latencies

from podium.broker import embedded_pid
from podium.runtime.kafka import (
    ensure_topics,
    fetch_wait_ms,
    learn_broker,
    make_consumer,
    make_producer,
)
from podium.runtime.settings import ConsumerSettings, Settings

#: the partition count of every topic, as for Podium (PODIUM_PARTITIONS, default 8)
PARTITIONS = Settings().partitions
SESSION_TIMEOUT_MS = 6_000
READY_TIMEOUT_S = 60.0
WORKFLOW_TIMEOUT_S = 60.0
WARMUP = 20
SCRIPT = str(Path(__file__).resolve())


def topic(step: int) -> str:
    return f"step{step}"


def consumer_settings(fetch_max_wait_ms: int) -> ConsumerSettings:
    return ConsumerSettings(
        fetch_max_wait_ms=fetch_max_wait_ms, session_timeout_ms=SESSION_TIMEOUT_MS
    )


# --- one relay (a child process) -------------------------------------------------------


async def relay(bootstrap: str, step: int, fetch_max_wait_ms: int) -> None:
    consumer = make_consumer(
        bootstrap,
        topic(step),
        group_id=f"floor-relay-{step}",
        settings=consumer_settings(fetch_max_wait_ms),
    )
    producer = make_producer(bootstrap)
    out = topic(step + 1)
    await producer.start()
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1_000)
            if not batches:
                continue
            futures = []
            for records in batches.values():
                for record in records:
                    doc = orjson.loads(record.value)
                    doc["step"] = step + 1
                    doc["ts"].append(time.time())  # when this relay got it: per-hop figures
                    futures.append(
                        await producer.send(out, value=orjson.dumps(doc), key=record.key)
                    )
            await asyncio.gather(*futures)
            await consumer.commit()
    finally:
        await consumer.stop()  # a clean leave, so a rerun on the same broker joins at once
        await producer.stop()


async def relay_main(bootstrap: str, step: int, fetch_max_wait_ms: int) -> None:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await relay(bootstrap, step, fetch_max_wait_ms)


# --- the driver -------------------------------------------------------------------------


class FloorChain:
    """Publishes into step0, waits for the same id on step5."""

    def __init__(self, bootstrap: str, fetch_max_wait_ms: int) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.producer = make_producer(bootstrap)
        self.consumer = make_consumer(
            bootstrap, group_id=None, settings=consumer_settings(fetch_max_wait_ms)
        )
        self.pending: dict[bytes, asyncio.Future[None]] = {}
        self.next_id = 0
        self._reader: asyncio.Task[None] | None = None
        self.hops: list[list[float]] | None = None  # per-hop ms of each latency workflow
        self.hop_p50: list[float] = []  # p50 of each hop (driver->relay0, ..., relay4->driver)

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()
        partitions = [TopicPartition(topic(STEPS), p) for p in range(PARTITIONS)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve positions now, before anything is sent
            await self.consumer.position(tp)
        self._reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.consumer.stop()
        await self.producer.stop()

    async def _read(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=1_000)
            for records in batches.values():
                for record in records:
                    future = self.pending.pop(record.key, None) if record.key else None
                    if future is None or future.done():
                        continue
                    future.set_result(None)
                    if self.hops is not None:
                        self._trace(record.value)

    def _trace(self, value: bytes | None) -> None:
        assert self.hops is not None and value is not None
        ts = [*orjson.loads(value)["ts"], time.time()]
        self.hops.append([(b - a) * 1000 for a, b in itertools.pairwise(ts)])

    async def one(self, i: int, limit_s: float = WORKFLOW_TIMEOUT_S) -> None:
        key = f"{self.run}-{i}".encode()
        done = asyncio.get_running_loop().create_future()
        self.pending[key] = done
        doc = {"id": key.decode(), "step": 0, "input": {"n": i}, "ts": [time.time()]}
        value = orjson.dumps(doc)
        delivery = await self.producer.send(topic(0), value=value, key=key)
        try:
            async with asyncio.timeout(limit_s):
                await done
        finally:
            self.pending.pop(key, None)
        await delivery  # long done; surfaces a produce error

    def _take(self, n: int) -> int:
        first, self.next_id = self.next_id, self.next_id + n
        return first

    async def run_latency(self, n: int) -> list[float]:
        self.hops = []
        try:
            return await sequential_latencies(self.one, n, first=self._take(n))
        finally:
            self.hop_p50 = [round(percentile(h, 50), 2) for h in zip(*self.hops, strict=False)]
            self.hops = None

    async def run_throughput(self, n: int, concurrency: int) -> float:
        return await closed_loop(self.one, n, concurrency, first=self._take(n))

    async def warm_up(self) -> None:
        """The first workflow out of step5 proves every relay has its partitions."""
        await self.one(self._take(1), limit_s=READY_TIMEOUT_S)
        await self.run_latency(WARMUP)


async def start_relays(bootstrap: str, fetch_max_wait_ms: int) -> list[asyncio.subprocess.Process]:
    return [
        await asyncio.create_subprocess_exec(
            sys.executable,
            SCRIPT,
            "relay",
            bootstrap,
            str(step),
            str(fetch_max_wait_ms),
        )
        for step in range(STEPS)
    ]


async def stop_relays(relays: list[asyncio.subprocess.Process]) -> None:
    for proc in relays:
        if proc.returncode is None:
            proc.terminate()
    for proc in relays:
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid(bootstrap: str) -> int | None:
    """The broker's process: `PODIUM_BENCH_BROKER_PID` (set by run.py for the Apache Kafka
    broker it starts), or the embedded tansu process listening on `bootstrap`."""
    if os.environ.get("PODIUM_BENCH_BROKER_PID"):
        return int(os.environ["PODIUM_BENCH_BROKER_PID"])
    return embedded_pid(bootstrap)


class MeasuredFloor(FloorChain):
    """FloorChain plus the CPU per workflow of the relays, the broker and the driver during
    throughput, split as the Podium systems report theirs (the broker's per record is
    what the floor's records cost it: the Podium systems' share of it scales with theirs)."""

    relays: list[asyncio.subprocess.Process]
    stats: dict[str, object]
    broker: int | None = None

    async def run_throughput(self, n: int, concurrency: int) -> float:
        throughput = super().run_throughput(n, concurrency)
        seconds, cpu = await with_cpu(throughput, self.relays, self.broker, n)
        self.stats = {"hop_p50_ms": self.hop_p50, "cpu_ms_per_workflow": cpu}
        return seconds


async def with_cpu(
    run: Awaitable[float], relays: list[asyncio.subprocess.Process], broker: int | None, n: int
) -> tuple[float, dict[str, float]]:
    """`run`'s seconds, and the CPU ms per workflow of the relays, the broker (when known)
    and this driver while it ran: the floor's split, as the Podium systems report theirs."""
    before = sum(cpu_seconds(p.pid) for p in relays)
    broker_before = cpu_seconds(broker) if broker else 0.0
    start = time.process_time()
    seconds = await run
    cpu = {
        "relays": sum(cpu_seconds(p.pid) for p in relays) - before,
        "driver": time.process_time() - start,
    }
    if broker:
        cpu["broker"] = cpu_seconds(broker) - broker_before
    return seconds, {name: round(s * 1000 / n, 3) for name, s in cpu.items()}


@contextlib.asynccontextmanager
async def chain(bootstrap: str, fetch_max_wait_ms: int | None = None) -> AsyncIterator[FloorChain]:
    """The floor as a harness system: topics, five relay processes, a warmed-up driver."""
    wait = fetch_max_wait_ms if fetch_max_wait_ms is not None else await default_wait(bootstrap)
    await ensure_topics(bootstrap, [topic(s) for s in range(STEPS + 1)], PARTITIONS)
    driver = MeasuredFloor(bootstrap, wait)
    driver.broker = broker_pid(bootstrap)
    await driver.start()
    relays = await start_relays(bootstrap, wait)
    driver.relays = relays
    try:
        ready = time.perf_counter()
        await driver.warm_up()
        print(f"floor: relays ready in {time.perf_counter() - ready:.1f}s (W={wait} ms)")
        yield driver
    finally:
        await driver.stop()
        await stop_relays(relays)


async def default_wait(bootstrap: str) -> int:
    """PODIUM_CONSUMER__FETCH_MAX_WAIT_MS, or what Podium's consumers use on this broker:
    the floor parks its fetches as long as they do (500 ms on Kafka, 5 on tansu)."""
    await learn_broker(bootstrap)
    return fetch_wait_ms(bootstrap, Settings().consumer)


if __name__ == "__main__":
    if sys.argv[1:2] == ["relay"]:
        bootstrap, step, wait = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        asyncio.run(relay_main(bootstrap, step, wait))
    else:
        import run

        sys.exit(run.main(["--systems", "floor", *sys.argv[1:]]))
