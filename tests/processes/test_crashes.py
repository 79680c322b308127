"""A crash in the middle of a run loses no workflow (real processes, real broker).

Each test triggers 200 chain workflows (5 tasks each), injects a fault while
they are in flight — `kill -9` of a conductor, a task service, a choreography
service, the tracker, a service and the tracker at once, or `SIGSTOP` of one of
two conductors until the other has taken over — and checks that every workflow
ends Succeeded with exactly one ending on the wire. Handler runs are counted
from a file the test services append to: only what was truly in flight at the
crash may run again, and each case bounds it.

Every case runs on a fresh tansu; those named in `conftest.ON_APACHE_KAFKA` also on a
fresh single-node Apache Kafka. `test_cluster.py` reuses `run_with_a_crash` with
brokers as the victims.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from podium.client import Client, prepare_topics
from podium.runtime.settings import Settings
from podium.workflow.catalog import Catalog
from podium.workflow.loader import load_definitions
from tests.processes.conftest import FLOWS
from tests.processes.observe import calls, endings
from tests.processes.procs import Proc

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

WORKFLOWS = 200


#: handlers one service process runs at once (Settings.concurrency): what a crash interrupts
IN_FLIGHT = 64


@dataclass
class Report:
    workflows: int
    in_flight: int
    ended: int
    contradictory: int
    reruns: int
    recovery_s: float

    def __str__(self) -> str:
        return (
            f"{self.in_flight} of {self.workflows} workflows in flight at the fault,"
            f" {self.workflows - self.ended} lost,"
            f" {self.contradictory} contradictory endings, {self.reruns} handler re-runs,"
            f" first workflow ended {self.recovery_s:.1f} s after the fault"
        )


async def crash_midway(
    env: dict[str, str], crash: Callable[[], None], workflows: int = WORKFLOWS
) -> tuple[float, int]:
    """Call `crash` once a third of the handler runs have started; (when, runs started)."""
    third = workflows * 5 // 3
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "the handlers never got a third of the way"
        started = sum((await asyncio.to_thread(calls, env)).values())
        if started >= third:
            at = time.monotonic()
            await asyncio.to_thread(crash)
            return at, started
        await asyncio.sleep(0.02)  # polls the condition above; the crash waits on it


async def run_with_a_crash(
    env: dict[str, str],
    crash: Callable[[], None],
    mode: str = "orchestration",
    workflows: int = WORKFLOWS,
    timeout: float = 200,
) -> Report:
    """Trigger `workflows` chains, inject the fault midway, check every ending.

    Topics are created at the environment's PODIUM_REPLICATION_FACTOR (default 1).
    """
    bootstrap = env["PODIUM_BOOTSTRAP_SERVERS"]
    settings = Settings(
        bootstrap_servers=bootstrap,
        replication_factor=int(env.get("PODIUM_REPLICATION_FACTOR", "1")),
    )
    catalog = Catalog(load_definitions(FLOWS))
    await prepare_topics(bootstrap, settings, catalog.task_types)
    ended_at: dict[str, float] = {}
    async with Client(bootstrap, settings) as client:
        ids = [
            await client.trigger(catalog.get("chain"), {"sleep": 0.1}, wait=False, mode=mode)
            for _ in range(workflows)
        ]
        await client.flush()
        crashed = asyncio.create_task(crash_midway(env, crash, workflows))

        async def end_of(workflow_id: str) -> None:
            result = await client.expect(workflow_id)
            assert result.state == "Succeeded", result
            ended_at[workflow_id] = time.monotonic()

        await asyncio.wait_for(asyncio.gather(*(end_of(i) for i in ids)), timeout)
        fault_at, _ = await crashed
    counts = await asyncio.to_thread(calls, env)
    assert len(counts) == workflows * 5  # every attempt's handler ran
    endings_seen = await endings(bootstrap, settings)
    report = Report(
        workflows=workflows,
        in_flight=workflows - sum(t < fault_at for t in ended_at.values()),
        ended=len(ended_at),
        contradictory=sum(len(set(endings_seen[i])) > 1 for i in ids),
        reruns=sum(n - 1 for n in counts.values()),
        recovery_s=min((t - fault_at for t in ended_at.values() if t > fault_at), default=0.0),
    )
    print(f"\n{report}")
    assert report.ended == workflows and report.contradictory == 0
    assert {i: set(endings_seen[i]) for i in ids} == {i: {"Succeeded"} for i in ids}
    return report


@contextlib.contextmanager
def restartable(
    args_list: list[list[str]], env: dict[str, str]
) -> Iterator[tuple[list[Proc], Callable[[], None]]]:
    """Processes, and a `crash` that kill -9s them all at once and starts them again."""
    procs = [Proc(args, env) for args in args_list]
    live = list(procs)

    def crash() -> None:
        for proc in live:
            proc.process.kill()
        for proc in live:
            proc.kill()
        live[:] = [Proc(args, env) for args in args_list]
        procs.extend(live)
        for proc in live:
            proc.wait_ready()

    try:
        yield procs[: len(args_list)], crash
    finally:
        for proc in procs:
            proc.__exit__()


SERVICE = ["service", "tests.e2e.services:services"]
CHOREO = [*SERVICE, "--mode", "choreography"]


@pytest.mark.parametrize(
    ("victims", "others", "mode", "max_reruns"),
    [
        ([["conductor"]], [SERVICE], "orchestration", 0),
        ([SERVICE], [["conductor"]], "orchestration", IN_FLIGHT),
        ([CHOREO], [["tracker"]], "choreography", IN_FLIGHT),
        ([["tracker"]], [CHOREO], "choreography", 0),
        ([CHOREO, ["tracker"]], [], "choreography", IN_FLIGHT),
    ],
    ids=["conductor", "task-service", "choreography-service", "tracker", "service-and-tracker"],
)
async def test_kill_9_midway_loses_no_workflow(
    env: dict[str, str],
    victims: list[list[str]],
    others: list[list[str]],
    mode: str,
    max_reruns: int,
) -> None:
    with contextlib.ExitStack() as stack:
        bystanders = [stack.enter_context(Proc(args, env)) for args in others]
        first, crash = stack.enter_context(restartable(victims, env))
        for proc in [*bystanders, *first]:
            proc.wait_ready()
        report = await run_with_a_crash(env, crash, mode=mode)
        # only handlers truly in flight run again: finished ones are answered from the ledger
        assert report.reruns <= max_reruns


async def test_two_conductors_share_the_partitions_and_survive_losing_one(
    env: dict[str, str],
) -> None:
    with (
        Proc(SERVICE, env) as service,
        Proc(["conductor"], env) as survivor,
        Proc(["conductor"], env) as victim,
    ):
        service.wait_ready()
        survivor.wait_ready()
        victim.wait_ready()
        report = await run_with_a_crash(env, victim.kill)
        assert report.reruns == 0
        # both owned partitions, and the survivor took over the victim's from the changelog
        assert any("restored" in line and "partitions [" in line for line in victim.lines)
        assert sum("restored" in line for line in survivor.lines) >= 2


async def test_a_conductor_paused_until_the_other_took_over_changes_nothing(
    env: dict[str, str],
) -> None:
    """SIGSTOP one of two conductors until the other has restored its partitions, then
    SIGCONT: the resumed one is fenced, and no workflow is lost or ends twice.

    On Apache Kafka the survivor takes over within ~1 s, while the service still has a
    backlog of the paused conductor's commands: the survivor's resend of a command can
    land in the same fetched batch as the original, which the worker runs once."""
    with (
        Proc(SERVICE, env) as service,
        Proc(["conductor"], env) as survivor,
        Proc(["conductor"], env) as paused,
    ):
        for proc in (service, survivor, paused):
            proc.wait_ready()

        def pause() -> None:
            restored = sum("restored" in line for line in survivor.lines)
            paused.process.send_signal(signal.SIGSTOP)
            try:
                deadline = time.monotonic() + 60
                while sum("restored" in line for line in survivor.lines) == restored:
                    assert time.monotonic() < deadline, "the survivor never took over"
                    time.sleep(0.05)  # polls the survivor's log for its restore
            finally:
                paused.process.send_signal(signal.SIGCONT)

        report = await run_with_a_crash(env, pause)
        assert report.reruns == 0
