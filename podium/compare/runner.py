"""Running one definition in both modes under the same load, and measuring it.

Both deployments (see `scope`) run in this process, side by side, on one broker, but for
what `--kill` names: that part runs in a process of its own in each mode (`child`), which
is SIGKILLed at its time and started again at once. Each mode first runs `warmup`
workflows (not measured); then the runs go in blocks, the modes alternating A B B A A B
... so that drift and machine noise hit both; run i gets the same input and the same
injected failures in both modes. With a kill, each mode's runs are one block instead: a
recovery is watched on an unbroken clock, with the load going on. A workflow's latency
is from just before its trigger is sent to its end arriving at the client. Afterwards
every record on the topics the runs used is read once and counted by mode and by kind,
and those topics are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from podium.broker import embedded_pid
from podium.client import Client, Ended, prepare_topics
from podium.compare.child import Child, Sources, child_args
from podium.compare.recovery import Kill, KillRecord
from podium.compare.scope import Probe, Scope, start, stop
from podium.events import Mode, topics
from podium.runtime.changelog import read_partitions
from podium.runtime.component import Component
from podium.runtime.kafka import connection_options, make_consumer, partitions_of
from podium.runtime.memory import is_memory
from podium.runtime.settings import Settings
from podium.services.service import TaskService
from podium.workflow.catalog import Catalog
from podium.workflow.definition import Definition

log = logging.getLogger("podium.compare")

MODES = (Mode.ORCHESTRATION, Mode.CHOREOGRAPHY)
#: a workflow not ended this long after its own timeout (or after this, without one) is lost
GRACE_S = 30.0
DEFAULT_WAIT_S = 120.0
STATES = {
    "Succeeded": "succeeded",
    "Failed": "failed",
    "Compensated": "compensated",
    "Cancelled": "cancelled",
    "TimedOut": "timed_out",
}
OUTCOMES = (*STATES.values(), "lost")

Progress = Callable[[Mode, int], None]


@dataclass(frozen=True)
class Options:
    runs: int
    concurrency: int
    fail_rate: float
    inputs: list[dict[str, Any]]
    warmup: int = 10
    kills: tuple[Kill, ...] = ()
    #: every part in a process of its own (else only what `kills` names)
    processes: bool = False
    #: what a part's process is built from (needed with `kills` or `processes`)
    sources: Sources | None = None

    def input(self, i: int) -> dict[str, Any]:
        return self.inputs[i % len(self.inputs)]


@dataclass
class ModeRun:
    """One mode's deployment and what was measured of it."""

    scope: Scope
    definition: Definition
    probe: Probe
    parts: list[Component]
    services: list[str]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    children: dict[str, Child] = field(default_factory=dict)
    kills: list[KillRecord] = field(default_factory=list)
    #: (triggered, ended) in seconds of this mode's measured time, per run
    spans: dict[int, tuple[float, float]] = field(default_factory=dict)
    latency_s: dict[int, float] = field(default_factory=dict)
    states: dict[int, str] = field(default_factory=dict)
    #: (seconds of this mode's measured time, run index) at each end
    ends_at: list[tuple[float, int]] = field(default_factory=list)
    active_s: float = 0.0
    process_cpu_s: float = 0.0
    broker_cpu_s: float | None = None
    #: CPU seconds of each part that runs in a process of its own, by role
    part_cpu_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    messages: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    bytes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def ids(self) -> dict[str, int]:
        return {self.scope.workflow_id(str(i)): i for i in self.latency_s}


@dataclass
class Measured:
    runs: dict[Mode, ModeRun]
    elapsed_s: float
    broker: str
    #: the machine's 1-minute load average when the runs began and when they ended
    load: tuple[float, float] = (0.0, 0.0)


def blocks(runs: int, interleave: bool = True) -> list[tuple[Mode, range]]:
    """The runs split into blocks, the modes alternating A B B A A B ... (or one each)."""
    if not interleave:
        return [(mode, range(runs)) for mode in MODES]
    count = min(runs, max(2, runs // 50))
    size = -(-runs // count)
    out: list[tuple[Mode, range]] = []
    for k, first in enumerate(range(0, runs, size)):
        chunk = range(first, min(first + size, runs))
        order = MODES if k % 2 == 0 else MODES[::-1]
        out.extend((mode, chunk) for mode in order)
    return out


async def measure(
    definition: Definition,
    services: list[TaskService],
    options: Options,
    *,
    bootstrap: str,
    settings: Settings,
    progress: Progress | None = None,
) -> Measured:
    began = time.perf_counter()
    load = os.getloadavg()[0]
    run_id = uuid.uuid4().hex[:8]
    wait_s = (definition.timeout or DEFAULT_WAIT_S - GRACE_S) + GRACE_S
    broker = embedded_pid(bootstrap)
    apart = options.kills or options.processes
    logs = Path(tempfile.mkdtemp(prefix="podium-compare-")) if apart else None
    runs: dict[Mode, ModeRun] = {}
    for mode in MODES:
        runs[mode] = await _deploy(
            Scope(f"cmp{run_id}{mode.value[0]}", mode),
            definition,
            services,
            options,
            bootstrap=bootstrap,
            settings=settings,
            logs=logs,
        )
    try:
        await _start(list(runs.values()))
        async with Client(bootstrap, settings) as client:
            for run in runs.values():
                for w in range(options.warmup):
                    state, _ = await _one(client, run, f"w{w}", options.input(w), wait_s)
                    if state == "lost":
                        raise RuntimeError(f"a {run.scope.mode.value} warm-up workflow was lost")
            for mode, chunk in blocks(options.runs, interleave=not options.kills):
                await _block(client, runs[mode], chunk, options, wait_s, broker, progress)
    finally:
        for run in runs.values():
            await stop(run.parts, run.tasks)
            for child in run.children.values():
                await child.stop()
    lost = any(state == "lost" for run in runs.values() for state in run.states.values())
    if logs is not None and not lost:  # the parts' logs are kept for a run that lost work
        shutil.rmtree(logs, ignore_errors=True)
    await _count_traffic(bootstrap, list(runs.values()))
    await _delete_topics(bootstrap, [t for run in runs.values() for t in _scoped_topics(run)])
    where = "in-memory bus" if is_memory(bootstrap) else bootstrap
    return Measured(runs, time.perf_counter() - began, where, (load, os.getloadavg()[0]))


async def _deploy(
    scope: Scope,
    definition: Definition,
    services: list[TaskService],
    options: Options,
    *,
    bootstrap: str,
    settings: Settings,
    logs: Path | None,
) -> ModeRun:
    """One mode's deployment: its topics, its parts here, and a child for each killed one."""
    scoped = scope.definition(definition)
    probe = Probe(options.fail_rate)
    catalog = Catalog([scoped])
    await prepare_topics(bootstrap, settings, catalog.task_types)
    scoped_services = scope.services(services, probe)
    roles = {kill.role(scope.mode) for kill in options.kills}
    if options.processes:
        coordinator = "conductor" if scope.mode == Mode.ORCHESTRATION else "tracker"
        roles |= {scope.role(s.name) for s in scoped_services} | {coordinator}
    parts = scope.parts(catalog, scoped_services, bootstrap, settings, lambda r: r not in roles)
    run = ModeRun(
        scope,
        scoped,
        probe,
        parts,
        [s.name for s in scoped_services],
        kills=[KillRecord(kill, kill.role(scope.mode)) for kill in options.kills],
    )
    for role in sorted(roles):
        assert options.sources is not None and logs is not None
        args = child_args(options.sources, scope, role, options.fail_rate, bootstrap)
        run.children[role] = Child(role, args, logs / f"{scope.prefix}-{role}.log", probe)
    return run


async def _start(runs: list[ModeRun]) -> None:
    """Every part of both modes, here and in children; return once all are ready."""
    children = [child for run in runs for child in run.children.values()]
    await asyncio.gather(*(child.start() for child in children))
    started = await asyncio.gather(*(start(run.parts) for run in runs))
    for run, tasks in zip(runs, started, strict=True):
        run.tasks = tasks
    await asyncio.gather(*(child.wait_ready() for child in children))


async def _one(
    client: Client, run: ModeRun, tag: str, input: dict[str, Any], wait_s: float
) -> tuple[str, float]:
    workflow_id = run.scope.workflow_id(tag)
    sent = time.perf_counter()
    ended: asyncio.Future[Ended] = client.expect(workflow_id)
    await client.trigger(
        run.definition, input, workflow_id=workflow_id, mode=run.scope.mode, wait=False
    )
    try:
        result = await asyncio.wait_for(asyncio.shield(ended), wait_s)
    except TimeoutError:
        return "lost", time.perf_counter() - sent
    return STATES.get(result.state, "failed"), time.perf_counter() - sent


async def _block(
    client: Client,
    run: ModeRun,
    chunk: range,
    options: Options,
    wait_s: float,
    broker: int | None,
    progress: Progress | None,
) -> None:
    indices = iter(chunk)
    cpu_before = time.process_time()
    broker_before = _cpu_seconds(broker)
    parts_before = {role: child.cpu_s() for role, child in run.children.items()}
    started = time.perf_counter()
    offset = run.active_s

    def now() -> float:  # seconds of this mode's measured time
        return offset + time.perf_counter() - started

    async def worker() -> None:
        for i in indices:  # shared: each run is taken once
            triggered = now()
            state, seconds = await _one(client, run, str(i), options.input(i), wait_s)
            run.states[i] = state
            run.latency_s[i] = seconds
            run.ends_at.append((now(), i))
            run.spans[i] = (triggered, now())
            if progress is not None:
                progress(run.scope.mode, 1)

    killers = {
        record: asyncio.create_task(_kill_and_restart(run, record, now))
        for record in run.kills
        if record.killed_at is None
    }
    async with asyncio.TaskGroup() as group:
        for _ in range(min(options.concurrency, len(chunk))):
            group.create_task(worker())
    for record, killer in killers.items():
        if record.killed_at is None:
            killer.cancel()  # its time never came while the runs went on
        with contextlib.suppress(asyncio.CancelledError):
            await killer  # a restart under way is waited for
    run.active_s += time.perf_counter() - started
    run.process_cpu_s += time.process_time() - cpu_before
    for role, child in run.children.items():
        run.part_cpu_s[role] += child.cpu_s() - parts_before[role]
    broker_after = _cpu_seconds(broker)
    if broker_after is not None and broker_before is not None:
        run.broker_cpu_s = (run.broker_cpu_s or 0.0) + broker_after - broker_before


async def _kill_and_restart(run: ModeRun, record: KillRecord, now: Callable[[], float]) -> None:
    """At its time, SIGKILL the part's process and start it again at once (as a supervisor
    would); note when each happened, in the mode's measured time."""
    await asyncio.sleep(max(0.0, record.kill.at_s - now()))
    child = run.children[record.role]
    await child.kill()
    record.killed_at = now()
    await child.start()
    await child.wait_ready()
    record.ready_at = now()


# -- what went over the wire ------------------------------------------------------------


def kind_of(topic: str) -> str:
    if topic == topics.TRIGGERS:
        return "triggers"
    if topic == topics.WORKFLOWS:
        return "completions"
    if topic == topics.DEAD_LETTER:
        return "dead_letters"
    if topics.is_command_topic(topic):
        return "commands"
    if topics.is_changelog(topic):
        return "changelogs"
    return "outcomes"


def _scoped_topics(run: ModeRun) -> list[str]:
    types = {t.type for t in run.definition.tasks}
    types |= {t.compensate.type for t in run.definition.tasks if t.compensate is not None}
    names = [*topics.task_topics(types)]
    role = "conductor" if run.scope.mode == Mode.ORCHESTRATION else "tracker"
    names.append(topics.compare_changelog(run.scope.prefix, role))
    if run.scope.mode == Mode.CHOREOGRAPHY:
        names += [topics.choreography_changelog(s) for s in sorted(run.services)]
    return names


async def _count_traffic(bootstrap: str, runs: list[ModeRun]) -> None:
    """Every record of the runs' topics, counted by mode and kind (warm-up excluded)."""
    shared = [topics.TRIGGERS, topics.WORKFLOWS, topics.DEAD_LETTER]
    names = shared + [t for run in runs for t in _scoped_topics(run)]
    measured = {prefix: run for run in runs for prefix in [f"{run.scope.prefix}-"]}
    consumer = make_consumer(bootstrap, group_id=None)
    await consumer.start()
    # aiokafka's group-less routine must have started: cancelled unstarted, it raises at stop
    await asyncio.sleep(0)
    try:
        partitions = {t: {tp.partition for tp in await partitions_of(consumer, t)} for t in names}
    finally:
        await consumer.stop()
    for topic in names:
        kind = kind_of(topic)
        async for record in read_partitions(bootstrap, topic, partitions[topic]):
            key = (record.key or b"").decode(errors="replace")
            for prefix, run in measured.items():
                if key.startswith(prefix) and not key.startswith(f"{prefix}w"):
                    size = len(record.key or b"") + len(record.value or b"")
                    size += sum(len(k) + len(v or b"") for k, v in record.headers)
                    run.messages[kind] += 1
                    run.bytes[kind] += size
                    break


async def _delete_topics(bootstrap: str, names: list[str]) -> None:
    """The runs' own topics, gone once counted (the shared ones stay; so do the groups)."""
    if is_memory(bootstrap):
        return  # the bus goes with this process
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **connection_options())
    await admin.start()
    doomed: list[str] = []
    try:
        existing = set(await admin.list_topics())
        doomed = sorted(set(names) & existing)
        if doomed:
            await admin.delete_topics(doomed)
    except KafkaError as exc:  # a broker that cannot delete keeps them: say so, carry on
        log.warning("podium compare: could not delete its topics %s: %r", doomed, exc)
    finally:
        await admin.close()


# -- CPU -------------------------------------------------------------------------------


def _cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
