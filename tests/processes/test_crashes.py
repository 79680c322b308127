"""`kill -9` in the middle of a run loses no workflow (real processes, real broker).

Each test triggers 200 chain workflows (5 tasks each), kills a process while
they are in flight, and checks that every workflow still ends Succeeded. Handler
runs are counted from a file the test services append to: a command id that ran
twice is at-least-once delivery at work, and the count is reported.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from podium.broker import EmbeddedBroker
from podium.client import Client, prepare_topics
from podium.settings import Settings
from tests.processes.procs import Proc
from workflow.catalog import Catalog
from workflow.loader import load_definitions

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

FLOWS = Path(__file__).resolve().parents[1] / "e2e" / "flows"
WORKFLOWS = 200
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


async def crash_midway(calls: Path, crash) -> int:  # type: ignore[no-untyped-def]
    """Call `crash` once a third of the handler runs have started; return how many had."""
    third = WORKFLOWS * 5 // 3
    while True:
        started = len(await asyncio.to_thread(_lines, calls))
        if started >= third:
            await asyncio.to_thread(crash)
            return started
        await asyncio.sleep(0.02)  # polls the condition above; the crash waits on it


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def run_with_a_crash(
    env: dict[str, str], crash, mode: str = "orchestration"
) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Trigger WORKFLOWS chains, crash a process midway; (ended, reruns)."""
    settings = Settings(bootstrap_servers=env["PODIUM_BOOTSTRAP_SERVERS"])
    catalog = Catalog(load_definitions(FLOWS))
    await prepare_topics(settings.bootstrap_servers or "", settings, catalog.task_types)
    async with Client(settings.bootstrap_servers or "", settings) as client:
        ids = [
            await client.trigger(catalog.get("chain"), {"sleep": 0.1}, wait=False, mode=mode)
            for _ in range(WORKFLOWS)
        ]
        await client.flush()
        calls_file = Path(env["PODIUM_TEST_CALLS"])
        crashed = asyncio.create_task(crash_midway(calls_file, crash))
        ended = 0
        for future in asyncio.as_completed([client.expect(i) for i in ids], timeout=200):
            result = await future
            assert result.state == "Succeeded", result
            ended += 1
        ran_before_crash = await crashed
    calls = await asyncio.to_thread(_lines, calls_file)
    counts = collections.Counter(calls)
    assert len(counts) == WORKFLOWS * 5  # every attempt's handler ran
    reruns = sum(n - 1 for n in counts.values())
    print(
        f"\n{ended} workflows ended Succeeded; {ran_before_crash} of {WORKFLOWS * 5} handler runs"
        f" had started at the crash; re-runs (at-least-once): {reruns}"
    )
    return ended, reruns


@contextlib.contextmanager
def restartable(args: list[str], env: dict[str, str]) -> Iterator[tuple[Proc, Callable[[], None]]]:
    """A process and a `crash` that kill -9s it and starts it again (waiting until ready)."""
    procs = [Proc(args, env)]

    def crash() -> None:
        procs[-1].kill()
        procs.append(Proc(args, env))
        procs[-1].wait_ready()

    try:
        yield procs[0], crash
    finally:
        for proc in procs:
            proc.__exit__()


SERVICE = ["service", "tests.e2e.services:services"]


@pytest.mark.parametrize(
    ("victim", "other", "mode"),
    [
        (["conductor"], SERVICE, "orchestration"),
        (SERVICE, ["conductor"], "orchestration"),
        ([*SERVICE, "--mode", "choreography"], ["tracker"], "choreography"),
    ],
    ids=["conductor", "task-service", "choreography-service"],
)
async def test_kill_9_midway_loses_no_workflow(
    env: dict[str, str], victim: list[str], other: list[str], mode: str
) -> None:
    with Proc(other, env) as bystander, restartable(victim, env) as (first, crash):
        bystander.wait_ready()
        first.wait_ready()
        ended, _ = await run_with_a_crash(env, crash, mode=mode)
        assert ended == WORKFLOWS


async def test_two_conductors_share_the_partitions_and_survive_losing_one(
    env: dict[str, str],
) -> None:
    with (
        Proc(["service", "tests.e2e.services:services"], env) as service,
        Proc(["conductor"], env) as survivor,
        Proc(["conductor"], env) as victim,
    ):
        service.wait_ready()
        survivor.wait_ready()
        victim.wait_ready()
        ended, _ = await run_with_a_crash(env, victim.kill)
        assert ended == WORKFLOWS
        # both owned partitions, and the survivor took over the victim's from the changelog
        assert any("restored" in line and "partitions [" in line for line in victim.lines)
        assert sum("restored" in line for line in survivor.lines) >= 2
