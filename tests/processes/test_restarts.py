"""Planned restarts (SIGTERM), as a deployment does them, with real processes and broker.

- a rolling restart of two conductors, or of two task services, while workflows
  keep arriving: each is sent SIGTERM, drains (exit 0), and is started again once
  the other holds every partition; every workflow ends Succeeded with one
  completion on the wire, and every handler ran exactly once;
- a drain that outlasts `PODIUM_DRAIN_TIMEOUT_S`: a service whose handler never
  returns exits 1 with the reason, commits nothing for that command, and the
  next service process runs it again and the workflow ends.

A conductor that takes over a partition announces again the end of workflows that
ended there in the last minute (`REANNOUNCE_WINDOW_S`): it cannot tell whether the
announcement was acknowledged before its owner went away. That record carries the
same event id (`<workflow id>:finished`), so a reader sees one completion, told
again; the rolling restart test counts those repeats and checks there is no other.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from pathlib import Path

import pytest

from podium.client import Client, prepare_topics
from podium.events import DecodeError, WorkflowCompleted, WorkflowFailed, decode, topics
from podium.runtime.changelog import read_partitions
from podium.runtime.kafka import raw_record
from podium.runtime.settings import Settings
from podium.workflow.catalog import Catalog
from podium.workflow.loader import load_definitions
from tests.processes import hanging
from tests.processes.conftest import FLOWS
from tests.processes.observe import calls, endings
from tests.processes.procs import Proc
from tests.processes.test_crashes import SERVICE

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

#: workflows triggered a second, from before the first SIGTERM to after the last restart
RATE = 20


async def ending_events(bootstrap: str, settings: Settings) -> dict[str, list[tuple[str, str]]]:
    """Every terminal event on the lifecycle topic as (event id, state), by workflow id."""
    found: dict[str, list[tuple[str, str]]] = {}
    async for record in read_partitions(
        bootstrap, topics.WORKFLOWS, set(range(settings.partitions)), settings.consumer
    ):
        try:
            event = decode(raw_record(record))
        except DecodeError:
            continue
        if isinstance(event.data, WorkflowCompleted | WorkflowFailed):
            found.setdefault(event.workflowid, []).append((event.id, event.data.state))
    return found


def roll(
    procs: list[Proc], args: list[str], env: dict[str, str], stack: contextlib.ExitStack
) -> list[float]:
    """Restart each process in turn: SIGTERM, its exit (drained: 0), a new one ready.

    Returns when each SIGTERM was sent (monotonic clock). The new process is ready
    once it has joined, been assigned partitions and restored their state.
    """
    sent = []
    for index, old in enumerate(procs):
        sent.append(time.monotonic())
        code = old.terminate(timeout=60)
        assert code == 0, f"{args} #{index} did not drain:\n{''.join(old.lines[-20:])}"
        procs[index] = stack.enter_context(Proc(args, env))
        procs[index].wait_ready()
    return sent


@pytest.mark.parametrize(
    ("rolled", "other"),
    [(["conductor"], SERVICE), (SERVICE, ["conductor"])],
    ids=["conductors", "services"],
)
async def test_a_rolling_restart_under_load_loses_and_repeats_nothing(
    env: dict[str, str], rolled: list[str], other: list[str]
) -> None:
    bootstrap = env["PODIUM_BOOTSTRAP_SERVERS"]
    settings = Settings(bootstrap_servers=bootstrap)
    catalog = Catalog(load_definitions(FLOWS))
    await prepare_topics(bootstrap, settings, catalog.task_types)
    ended_at: dict[str, float] = {}
    triggered_at: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        bystander = stack.enter_context(Proc(other, env))
        pair = [stack.enter_context(Proc(rolled, env)) for _ in range(2)]
        for proc in [bystander, *pair]:
            proc.wait_ready()
        first_generation = list(pair)
        async with Client(bootstrap, settings) as client:
            finished = asyncio.Event()
            waiters: list[asyncio.Task[None]] = []

            async def end_of(workflow_id: str) -> None:
                result = await client.expect(workflow_id)
                assert result.state == "Succeeded", result
                ended_at[workflow_id] = time.monotonic()

            async def load() -> None:
                while not finished.is_set():
                    wid = await client.trigger(catalog.get("chain"), {"sleep": 0.05}, wait=False)
                    await client.flush()
                    triggered_at[wid] = time.monotonic()
                    waiters.append(asyncio.create_task(end_of(wid)))
                    await asyncio.sleep(1 / RATE)  # paces the load; nothing waits on it

            loader = asyncio.create_task(load())
            while len(ended_at) < RATE:  # the restarts begin once workflows are flowing
                assert not loader.done(), loader
                await asyncio.sleep(0.02)  # polls the condition above
            sent = await asyncio.to_thread(roll, pair, rolled, env, stack)
            finished.set()
            await loader
            await asyncio.wait_for(asyncio.gather(*waiters), 120)
        announced = await ending_events(bootstrap, settings)
        counts = await asyncio.to_thread(calls, env)

    ids = list(triggered_at)
    # the restarts happened under load: workflows begun before a SIGTERM ended after it
    spanning = [
        sum(triggered_at[i] < at < ended_at[i] for i in ids) for at in sent
    ]  # fmt: skip
    repeats = sum(len(announced.get(i, [])) - 1 for i in ids)
    ends = sorted(ended_at.values())
    # how long work stalled while partitions moved: the longest stretch without an end
    stall = max(b - a for a, b in itertools.pairwise(ends))
    print(
        f"\n{len(ids)} workflows at {RATE}/s across a rolling restart of 2 x {rolled[0]};"
        f" in flight at each SIGTERM: {spanning}; lost 0; longest stretch without an"
        f" end {stall:.1f} s; ends announced again on takeover (same event id): {repeats}"
    )
    assert all(n > 0 for n in spanning), spanning
    assert len(ended_at) == len(ids)
    # one completion per workflow on the lifecycle topic: one event id, one state, however
    # often a new owner re-announced it
    assert {i: set(announced[i]) for i in ids} == {i: {(f"{i}:finished", "Succeeded")} for i in ids}
    # every task's command ran its handler exactly once
    assert len(counts) == 5 * len(ids) and set(counts.values()) == {1}
    for old in first_generation:
        assert any("stopped" in line for line in old.lines), "".join(old.lines[-20:])
    took_over = "restored" if rolled == ["conductor"] else "assigned"
    for new in pair:
        assert any(took_over in line for line in new.lines), "".join(new.lines[-20:])


HANGS = ["service", "tests.processes.hanging:services"]


async def test_a_drain_past_its_timeout_exits_1_and_the_command_runs_again_elsewhere(
    env: dict[str, str], tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hang.yaml").write_text(hanging.DEFINITION)
    env = {**env, "PODIUM_DEFINITIONS": str(flows), "PODIUM_DRAIN_TIMEOUT_S": "1"}
    bootstrap = env["PODIUM_BOOTSTRAP_SERVERS"]
    settings = Settings(bootstrap_servers=bootstrap)
    catalog = Catalog(load_definitions(flows))
    await prepare_topics(bootstrap, settings, catalog.task_types)
    with Proc(["conductor"], env) as conductor, Proc(HANGS, env) as first:
        conductor.wait_ready()
        first.wait_ready()
        async with Client(bootstrap, settings) as client:
            wid = await client.trigger(catalog.get("hang"), {}, wait=False)
            await client.flush()
            while True:
                if await asyncio.to_thread(calls, env):  # the stuck handler has begun
                    break
                await asyncio.sleep(0.02)  # polls the condition above
            code = await asyncio.to_thread(first.terminate, 60)
            assert code == 1, "".join(first.lines[-20:])
            assert any("stopped without draining (1s)" in line for line in first.lines)
            assert wid not in await endings(bootstrap, settings)
            # the abandoned command's offset was not committed: a new process gets it again
            with Proc(HANGS, env) as second:
                second.wait_ready()
                result = await asyncio.wait_for(client.expect(wid), 60)
    assert result.state == "Succeeded", result
    counts = await asyncio.to_thread(calls, env)
    assert sorted(counts.values()) == [1, 2]  # `stuck` abandoned then run again; `after` once
    assert (await endings(bootstrap, settings))[wid] == ["Succeeded"]
