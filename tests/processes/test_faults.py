"""Faults beyond a clean `kill -9`: every workflow ends once, with one true ending.

Real processes on a fresh embedded broker. Each test names the fault it injects:
a tracker killed while it holds outcomes it cannot apply yet, a conductor paused
(SIGSTOP) past its session while another takes over, a command that kills its
service every time, and the same workflow id triggered again, before and after
restarts.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from podium.client import Client, prepare_topics
from podium.events import (
    TaskSucceeded,
    encode,
    new_event,
    topics,
)
from podium.runtime.changelog import read_partitions
from podium.runtime.kafka import make_consumer, make_producer
from podium.runtime.settings import Settings
from podium.workflow.catalog import Catalog
from podium.workflow.loader import load_definitions
from tests.processes.conftest import FLOWS
from tests.processes.observe import calls, endings
from tests.processes.procs import Proc, podium

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]

SERVICE = ["service", "tests.e2e.services:services"]
CATALOG = Catalog(load_definitions(FLOWS))


async def prepare(env: dict[str, str]) -> Settings:
    settings = Settings(bootstrap_servers=env["PODIUM_BOOTSTRAP_SERVERS"])
    await prepare_topics(env["PODIUM_BOOTSTRAP_SERVERS"], settings, CATALOG.task_types)
    return settings


async def committed_past(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Wait until `group` has committed past each of these record offsets."""
    consumer = make_consumer(bootstrap, group_id=group)
    await consumer.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            done = [((await consumer.committed(tp)) or 0) > o for tp, o in offsets.items()]
            if all(done):
                return
            assert time.monotonic() < deadline, f"{group} did not commit past {offsets}"
            await asyncio.sleep(0.05)  # polls the broker's committed offsets
    finally:
        await consumer.stop()


def outcome_event(workflow_id: str, task_id: str, task_type: str, output: Any) -> Any:
    outcome = TaskSucceeded(
        workflow="observed",
        version=1,
        command_id=f"{workflow_id}:{task_id}:1",
        task_id=task_id,
        task_type=task_type,
        attempt=1,
        output=output,
        mode="choreography",
    )
    return encode(new_event(outcome, source="test", workflow_id=workflow_id, task_id=task_id))


async def test_a_killed_tracker_keeps_the_outcomes_it_held(env: dict[str, str]) -> None:
    """Outcomes that overtook their upstream are held durably, not only in memory."""
    bootstrap = env["PODIUM_BOOTSTRAP_SERVERS"]
    settings = await prepare(env)
    tracker = Proc(["tracker"], env)
    restarted: Proc | None = None
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        tracker.wait_ready()
        async with Client(bootstrap, settings) as client:
            workflow_id = await client.trigger(
                CATALOG.get("observed"), {"n": 1}, mode="choreography"
            )
            offsets = {}
            # c, then b: each waits for its upstream, which has not been seen yet
            for task_id, task_type in [("c", "test.other"), ("b", "test.external")]:
                record = outcome_event(workflow_id, task_id, task_type, {"n": 7})
                meta = await producer.send_and_wait(
                    topics.outcomes(task_type),
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                )
                offsets[TopicPartition(meta.topic, meta.partition)] = meta.offset
            await committed_past(bootstrap, "podium.tracker", offsets)
            tracker.kill()
            restarted = Proc(["tracker"], env)
            restarted.wait_ready()
            record = outcome_event(workflow_id, "a", "test.external", {"n": 7})
            await producer.send_and_wait(
                topics.outcomes("test.external"),
                value=record.value,
                key=record.key,
                headers=record.headers,
            )
            result = await asyncio.wait_for(client.expect(workflow_id), 30)
        assert (result.state, result.output) == ("Succeeded", {"n": 7})
        assert {t: s.state for t, s in result.tasks.items()} == dict.fromkeys("abc", "Succeeded")
    finally:
        await producer.stop()
        tracker.__exit__()
        if restarted is not None:
            restarted.__exit__()


async def test_a_paused_conductor_does_not_contradict_the_one_that_took_over(
    env: dict[str, str],
) -> None:
    """SIGSTOP past the session: the resumed conductor is fenced, its stale timers change
    nothing, and every workflow has one ending, Succeeded, on the wire and in the changelog."""
    bootstrap = env["PODIUM_BOOTSTRAP_SERVERS"]
    settings = await prepare(env)
    with Proc(SERVICE, env) as service, Proc(["conductor"], env) as survivor:
        service.wait_ready()
        survivor.wait_ready()
        with Proc(["conductor"], env) as paused:
            paused.wait_ready()
            async with Client(bootstrap, settings) as client:
                ids = [
                    await client.trigger(CATALOG.get("paused"), {}, wait=False) for _ in range(40)
                ]
                await client.flush()
                deadline = time.monotonic() + 60
                while sum(calls(env).values()) < len(ids):  # every s1 attempt 1 has started
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
                restored = sum("restored" in line for line in survivor.lines)
                paused.process.send_signal(signal.SIGSTOP)
                stopped = time.monotonic()
                try:
                    results = await asyncio.wait_for(
                        asyncio.gather(*(client.expect(i) for i in ids)), 90
                    )
                    # the survivor took the paused one's partitions over from the changelog
                    assert sum("restored" in line for line in survivor.lines) > restored
                    # the fault lasts past the 12 s attempt timeouts the paused one armed,
                    # so that on resuming it has stale timers to fire
                    await asyncio.sleep(max(0.0, stopped + 13 - time.monotonic()))
                finally:
                    paused.process.send_signal(signal.SIGCONT)
                assert {r.state for r in results} == {"Succeeded"}
                # the resumed conductor learns it is out of date, rejoins and restores
                rejoined = sum("restored" in line for line in paused.lines) + 1
                deadline = time.monotonic() + 60
                while sum("restored" in line for line in paused.lines) < rejoined:
                    assert time.monotonic() < deadline, "".join(paused.lines[-20:])
                    await asyncio.sleep(0.05)
    ended = await endings(bootstrap, settings)
    assert {i: set(ended[i]) for i in ids} == {i: {"Succeeded"} for i in ids}
    snapshots: dict[str, bytes] = {}
    async for record in read_partitions(
        bootstrap, topics.CONDUCTOR_CHANGELOG, set(range(settings.partitions)), settings.consumer
    ):
        if record.key is not None and record.value is not None:
            snapshots[record.key.decode()] = record.value
    for workflow_id in ids:
        assert b'"status":"Succeeded"' in snapshots[workflow_id], snapshots[workflow_id][:300]


@pytest.mark.parametrize("mode", ["orchestration", "choreography"])
async def test_a_command_that_kills_its_service_is_given_up_on(
    env: dict[str, str], mode: str
) -> None:
    """The service is restarted each time it dies (a supervisor); after `max_deliveries`
    deaths the command fails for good, and the other workflows on its partition finish."""
    env = {**env, "PODIUM_PARTITIONS": "1"}  # every workflow on the poisoned partition
    bootstrap = env["PODIUM_BOOTSTRAP_SERVERS"]
    settings = Settings(bootstrap_servers=bootstrap, partitions=1)
    await prepare_topics(bootstrap, settings, CATALOG.task_types)
    service_args = [*SERVICE, "--mode", mode]
    observer = Proc(["conductor" if mode == "orchestration" else "tracker"], env)
    procs = [Proc(service_args, env)]

    async def supervise() -> None:
        while True:
            await asyncio.to_thread(procs[-1].process.wait)
            procs.append(Proc(service_args, env))

    try:
        observer.wait_ready()
        procs[0].wait_ready()
        async with Client(bootstrap, settings) as client:
            poison = CATALOG.get("poison")
            innocent = [
                await client.trigger(poison, {"exit": False, "sleep": 0.3}, mode=mode)
                for _ in range(3)
            ]
            doomed = await client.trigger(poison, {"exit": True, "sleep": 0}, mode=mode)
            supervisor = asyncio.create_task(supervise())
            try:
                results = await asyncio.wait_for(
                    asyncio.gather(*(client.expect(i) for i in [*innocent, doomed])), 150
                )
            finally:
                supervisor.cancel()
    finally:
        observer.__exit__()
        for proc in procs:
            proc.__exit__()
    *fine, poisoned = results
    assert [r.state for r in fine] == ["Succeeded"] * 3
    assert poisoned.state == "Failed"
    error = poisoned.tasks["p"].error
    assert error is not None and (error.type, error.retryable) == ("PoisonCommand", False)
    ran = calls(env)
    deaths = len(procs) - 1
    print(f"\n{mode}: service died {deaths} time(s); handler runs {dict(ran)}")
    assert ran[f"{doomed}:p:1"] == settings.max_deliveries  # then given up, never run again
    assert f"{doomed}:p:2" not in ran  # PoisonCommand is not retried
    assert deaths == settings.max_deliveries


@pytest.mark.parametrize("mode", ["orchestration", "choreography"])
async def test_a_workflow_id_starts_once_across_restarts_and_a_repeat_is_answered(
    env: dict[str, str], mode: str
) -> None:
    """`trigger --id X --wait` twice, then again after every process restarted with the
    workflow's state already evicted: one handler run, the same result each time."""
    env = {**env, "PODIUM_RETENTION_S": "0"}  # evicted at once: only the ended record is left
    observer = ["conductor" if mode == "orchestration" else "tracker"]
    service = [*SERVICE, "--mode", mode]

    def trigger() -> Any:
        done = podium(
            *("trigger", "chain", "--id", "X", "--mode", mode, "--input", '{"sleep": 0}'),
            *("--wait", "--timeout", "60", "--json"),
            env=env,
        )
        assert done.returncode == 0, done.stderr
        return orjson.loads(done.stdout)

    for _ in range(2):  # the second round: every process restarted, state evicted
        with Proc(service, env) as svc, Proc(observer, env) as obs:
            svc.wait_ready()
            obs.wait_ready()
            first = await asyncio.to_thread(trigger)
            again = await asyncio.to_thread(trigger)
            assert (first["state"], first["output"]) == ("Succeeded", {"last": 5})
            assert again == first
    assert set(calls(env).values()) == {1}  # each of the five tasks ran once in all
    assert len(calls(env)) == 5
