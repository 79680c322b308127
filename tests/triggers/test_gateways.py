"""Two trigger gateway processes on a real broker (tansu, Apache Kafka), in both modes,
sharing the bindings and the waits, and one of them killed with `kill -9` in the middle
of a stream of records, then started again: every record starts exactly one workflow,
every wait is released, nothing is lost and nothing starts twice."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest

from podium.client import Client, Ended
from podium.events import WorkflowStarted, decode, topics
from podium.runtime.changelog import read_partitions
from podium.runtime.kafka import make_producer, raw_record
from podium.runtime.settings import Settings
from tests.processes.procs import Proc

FLOWS = str(Path(__file__).parent / "flows")
#: records in the stream: half before the kill, half while the gateway is down
RECORDS = 40


@pytest.mark.parametrize("mode", ["orchestration", "choreography"])
def test_two_gateways_and_a_kill_start_each_record_once(kafka: str, mode: str) -> None:
    tag = f"gated-{mode}-{uuid.uuid4().hex[:8]}"  # the broker outlives the test
    env = {
        "PODIUM_BOOTSTRAP_SERVERS": kafka,
        "PODIUM_DEFINITIONS": FLOWS,
        "PODIUM_MODE": mode,
        "PODIUM_CONSUMER__SESSION_TIMEOUT_MS": "3000",
        "PODIUM_CONSUMER__HEARTBEAT_INTERVAL_MS": "500",
    }
    decider = ["conductor"] if mode == "orchestration" else ["tracker"]
    with (
        Proc(["service", "tests.e2e.services:services"], env) as service,
        Proc(decider, env) as driver,
        Proc(["triggers"], env) as first,
        Proc(["triggers"], env) as second,
    ):
        for proc in (service, driver, first, second):
            proc.wait_ready()
        restarted: list[Proc] = []

        def kill_and_restart() -> None:
            first.kill()
            restarted.append(Proc(["triggers"], env))

        try:
            ended = asyncio.run(_stream(kafka, tag, kill_and_restart, restarted))
        except AssertionError:
            for proc in (first, second, *restarted, driver, service):
                print(proc.args, "".join(proc.lines[-40:]))
            raise
        finally:
            for proc in restarted:
                proc.__exit__()
    assert {wid: (e.state, e.output) for wid, e in ended.items()} == {
        f"{tag}-{n}": ("Succeeded", {"n": n}) for n in range(RECORDS)
    }
    started = asyncio.run(_starts(kafka, set(ended)))
    assert started == Counter({wid: 1 for wid in ended}), "a workflow started twice"


async def _stream(kafka: str, tag: str, kill_and_restart, restarted) -> dict[str, Ended]:  # type: ignore[no-untyped-def]
    async with Client(kafka, Settings(bootstrap_servers=kafka)) as client:
        ids = [f"{tag}-{n}" for n in range(RECORDS)]
        expected = {wid: client.expect(wid) for wid in ids}
        producer = make_producer(kafka)
        await producer.start()
        try:
            for n, wid in enumerate(ids):
                if n == RECORDS // 2:
                    await producer.flush()
                    kill_and_restart()  # mid-stream: half of them may not be taken yet
                order = {"tag": tag, "n": n}
                await producer.send("shop.gated", orjson.dumps(order), key=str(n).encode())
                approval = {"id": wid, "n": n}
                await producer.send("shop.gated_ok", orjson.dumps(approval), key=str(n).encode())
            await producer.flush()
        finally:
            await producer.stop()
        await asyncio.get_running_loop().run_in_executor(None, restarted[0].wait_ready)
        _, pending = await asyncio.wait(expected.values(), timeout=90)
        if pending:
            missing = [wid for wid, future in expected.items() if not future.done()]
            raise AssertionError(
                f"{len(missing)} workflows did not end: {await _whereabouts(kafka, missing)}"
            )
        return {wid: future.result() for wid, future in expected.items()}


async def _whereabouts(kafka: str, ids: list[str]) -> dict[str, list[str]]:
    """What each workflow's records say, for a failure's message."""
    settings = Settings(bootstrap_servers=kafka)
    partitions = set(range(settings.partitions))
    seen: dict[str, list[str]] = {wid: [] for wid in ids}
    wait = "podium.wait"
    for topic in (
        topics.TRIGGERS,
        topics.WORKFLOWS,
        topics.outcomes("test.step"),
        topics.commands(wait),
        topics.outcomes(wait),
    ):
        async for record in read_partitions(kafka, topic, partitions, settings.consumer):
            key = (record.key or b"").decode()
            if key in seen:
                event = decode(raw_record(record))
                seen[key].append(f"{topic}:{event.type}:{record.partition}")
    return seen


async def _starts(kafka: str, ids: set[str]) -> Counter[str]:
    """How often each of these workflows was announced as started."""
    settings = Settings(bootstrap_servers=kafka)
    found: Counter[str] = Counter()
    partitions = set(range(settings.partitions))
    async for record in read_partitions(kafka, topics.WORKFLOWS, partitions, settings.consumer):
        if (record.key or b"").decode(errors="replace") not in ids:
            continue  # another test's record on the session's broker (garbage included)
        event = decode(raw_record(record))
        if isinstance(event.data, WorkflowStarted):
            found[event.workflowid] += 1
    return found
