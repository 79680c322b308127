"""The raw-aiokafka floor of each shape: hand-written relays, no framework, no state.

A relay is one OS process and one consumer group, like `floor.py`'s: it consumes its
input topics in `getmany` batches, decodes each JSON value, routes it (zero or more
records out, keyed by the workflow id), sends them without awaiting, awaits the batch's
deliveries once, then commits. A shape's relays mirror its Podium services:

- `chain`: five relays in a row (the same relays as `floor.py`, under its own topics);
- `fanout`: `split` sends ten records to `work`, which adds one to each; `join` counts
  them per workflow in memory and sends the sum on once ten have arrived;
- `saga`: `inventory` reserves; `payments` charges, or declines an amount over 1,000 to
  `inventory`, which releases; `shipping` ships. Every end goes to the end topic with
  the workflow's state (`Succeeded` or `Compensated`).

What the floor leaves out is what Podium adds: the state machine, retries, timeouts,
changelogs, dead letters, CloudEvents headers, the ledger.

    python benchmarks/floor_shapes.py relay SHAPE RELAY BOOTSTRAP W   # started by the driver
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition
from floor import (
    PARTITIONS,
    READY_TIMEOUT_S,
    WARMUP,
    WORKFLOW_TIMEOUT_S,
    broker_pid,
    consumer_settings,
    default_wait,
    stop_relays,
    with_cpu,
)
from harness import closed_loop, sequential_latencies
from shapes import Shape

from podium.runtime.kafka import ensure_topics, make_consumer, make_producer

SCRIPT = str(Path(__file__).resolve())
FANOUT = 10

Doc = dict[str, Any]
#: (the record's value, the relay's join memory) -> records out, as (topic suffix, value)
Route = Callable[[Doc, dict[str, int]], list[tuple[str, Doc]]]


def topic(shape: str, name: str) -> str:
    return f"floor.{shape}.{name}"


@dataclass(frozen=True)
class Relay:
    name: str
    routes: dict[str, Route]  # input topic suffix -> what to send on


def _step(out: str) -> Route:
    def route(doc: Doc, _: dict[str, int]) -> list[tuple[str, Doc]]:
        return [(out, doc | {"n": doc["n"] + 1})]

    return route


def _split(doc: Doc, _: dict[str, int]) -> list[tuple[str, Doc]]:
    return [("work", doc | {"k": k}) for k in range(FANOUT)]


def _work(doc: Doc, _: dict[str, int]) -> list[tuple[str, Doc]]:
    return [("done", doc | {"n": doc["n"] + 1})]


def _join(doc: Doc, memory: dict[str, int]) -> list[tuple[str, Doc]]:
    key = doc["id"]
    memory[key] = memory.get(key, 0) + doc["n"]
    memory[f"{key}#"] = count = memory.get(f"{key}#", 0) + 1
    if count < FANOUT:
        return []
    total = memory.pop(key)
    del memory[f"{key}#"]
    return [("end", {"id": key, "state": "Succeeded", "output": {"total": total}})]


def _reserve(doc: Doc, _: dict[str, int]) -> list[tuple[str, Doc]]:
    return [("reserved", doc | {"reservation_id": f"r-{doc['id']}"})]


def _release(doc: Doc, _: dict[str, int]) -> list[tuple[str, Doc]]:
    return [("end", {"id": doc["id"], "state": "Compensated", "output": None})]


def _charge(doc: Doc, _: dict[str, int]) -> list[tuple[str, Doc]]:
    if doc["input"]["amount"] > 1000:
        return [("declined", doc)]
    return [("charged", doc | {"charge_id": f"c-{doc['id']}"})]


def _ship(doc: Doc, _: dict[str, int]) -> list[tuple[str, Doc]]:
    return [("end", {"id": doc["id"], "state": "Succeeded", "output": None})]


def _chain_end(doc: Doc, _: dict[str, int]) -> list[tuple[str, Doc]]:
    return [("end", {"id": doc["id"], "state": "Succeeded", "output": {"n": doc["n"] + 1}})]


RELAYS: dict[str, list[Relay]] = {
    "chain": [
        *(Relay(f"s{k}", {f"step{k - 1}": _step(f"step{k}")}) for k in range(1, 5)),
        Relay("s5", {"step4": _chain_end}),
    ],
    "fanout": [
        Relay("split", {"step0": _split}),
        Relay("work", {"work": _work}),
        Relay("join", {"done": _join}),
    ],
    "saga": [
        Relay("inventory", {"step0": _reserve, "declined": _release}),
        Relay("payments", {"reserved": _charge}),
        Relay("shipping", {"charged": _ship}),
    ],
}


def topics_of(shape: str) -> list[str]:
    names = {"step0", "end"}
    for relay in RELAYS[shape]:
        names |= set(relay.routes)
    return sorted(topic(shape, n) for n in names)


# --- one relay (a child process) -------------------------------------------------------


async def relay(bootstrap: str, shape: str, name: str, fetch_max_wait_ms: int) -> None:
    spec = next(r for r in RELAYS[shape] if r.name == name)
    routes = {topic(shape, suffix): route for suffix, route in spec.routes.items()}
    consumer = make_consumer(
        bootstrap,
        *routes,
        group_id=f"floor-{shape}-{name}",
        settings=consumer_settings(fetch_max_wait_ms),
    )
    producer = make_producer(bootstrap)
    memory: dict[str, int] = {}
    await producer.start()
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1_000)
            if not batches:
                continue
            futures = []
            for tp, records in batches.items():
                for record in records:
                    for out, doc in routes[tp.topic](orjson.loads(record.value), memory):
                        value = orjson.dumps(doc)
                        sent = await producer.send(topic(shape, out), value=value, key=record.key)
                        futures.append(sent)
            await asyncio.gather(*futures)
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


async def relay_main(bootstrap: str, shape: str, name: str, fetch_max_wait_ms: int) -> None:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await relay(bootstrap, shape, name, fetch_max_wait_ms)


# --- the driver -------------------------------------------------------------------------


class ShapeFloor:
    """Publishes a shape's workflows into its step0 and waits for each id on its end topic."""

    def __init__(self, bootstrap: str, shape: Shape, fetch_max_wait_ms: int) -> None:
        self.shape = shape
        self.run = uuid.uuid4().hex[:8]
        self.producer = make_producer(bootstrap)
        self.consumer = make_consumer(
            bootstrap, group_id=None, settings=consumer_settings(fetch_max_wait_ms)
        )
        self.pending: dict[bytes, asyncio.Future[Doc]] = {}
        self.next_id = 0
        self.relays: list[asyncio.subprocess.Process] = []
        self.broker: int | None = None
        self.stats: dict[str, object] = {}
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()
        end = topic(self.shape.name, "end")
        partitions = [TopicPartition(end, p) for p in range(PARTITIONS)]
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
                    if future is not None and not future.done():
                        future.set_result(orjson.loads(record.value))

    async def one(self, i: int, limit_s: float = WORKFLOW_TIMEOUT_S) -> None:
        key = f"{self.run}-{i}".encode()
        done: asyncio.Future[Doc] = asyncio.get_running_loop().create_future()
        self.pending[key] = done
        doc = {"id": key.decode(), "input": self.shape.input(i), "n": self.shape.input(i).get("n")}
        delivery = await self.producer.send(
            topic(self.shape.name, "step0"), value=orjson.dumps(doc), key=key
        )
        try:
            async with asyncio.timeout(limit_s):
                ended = await done
        finally:
            self.pending.pop(key, None)
        await delivery  # long done; surfaces a produce error
        wrong = self.shape.check(i, ended["state"], ended["output"])
        if wrong is not None:
            raise RuntimeError(f"floor workflow {key.decode()} ended {wrong}")

    def _take(self, n: int) -> int:
        first, self.next_id = self.next_id, self.next_id + n
        return first

    async def run_latency(self, n: int) -> list[float]:
        return await sequential_latencies(self.one, n, first=self._take(n))

    async def run_throughput(self, n: int, concurrency: int) -> float:
        throughput = closed_loop(self.one, n, concurrency, first=self._take(n))
        seconds, cpu = await with_cpu(throughput, self.relays, self.broker, n)
        self.stats = {"cpu_ms_per_workflow": cpu}
        return seconds

    async def warm_up(self) -> None:
        """The first workflow out proves every relay has its partitions."""
        await self.one(self._take(1), limit_s=READY_TIMEOUT_S)
        await self.run_latency(WARMUP)


@contextlib.asynccontextmanager
async def system(bootstrap: str, shape: Shape) -> AsyncIterator[ShapeFloor]:
    """The shape's floor as a harness system: topics, one relay process each, a driver."""
    wait = await default_wait(bootstrap)
    await ensure_topics(bootstrap, topics_of(shape.name), PARTITIONS)
    driver = ShapeFloor(bootstrap, shape, wait)
    driver.broker = broker_pid(bootstrap)
    await driver.start()
    driver.relays = [
        await asyncio.create_subprocess_exec(
            sys.executable, SCRIPT, "relay", shape.name, r.name, bootstrap, str(wait)
        )
        for r in RELAYS[shape.name]
    ]
    try:
        started = time.perf_counter()
        await driver.warm_up()
        print(f"floor-{shape.name}: ready in {time.perf_counter() - started:.1f}s (W={wait} ms)")
        yield driver
    finally:
        await driver.stop()
        await stop_relays(driver.relays)


if __name__ == "__main__":
    if sys.argv[1:2] != ["relay"] or sys.argv[3] not in {r.name for r in RELAYS[sys.argv[2]]}:
        sys.exit(__doc__)
    asyncio.run(relay_main(sys.argv[4], sys.argv[2], sys.argv[3], int(sys.argv[5])))
