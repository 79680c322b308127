"""Podium on the 5-task chain, in either mode: the task services and a conductor or tracker.

The chain is `chain/chain.yaml` (tasks s1..s5, types bench.s1..bench.s5, each
adding one to `n`) and `chain/services.py` (one TaskService per type). Every
process gets `--definitions benchmarks/chain`. Two modes (`MODES`):

- `orchestration`: `podium conductor` + the services (`podium service`), which
  execute the conductor's commands;
- `choreography` (`choreography.py` registers it): `podium tracker` + the
  services with `--mode choreography`, which react to triggers and outcomes
  themselves; the tracker only observes and announces the workflows' ends.
  Triggers carry `mode="choreography"`.

Two layouts:

- `per-step` (the registered default, like the floor's one process per relay):
  five `podium service benchmarks.chain.services:sN` processes + the conductor/tracker;
- `one-process`: one `podium service benchmarks.chain.services:services` process
  hosting all five services + the conductor/tracker.

Every process is started with cwd = the repository root and the benchmark's
bootstrap servers; the system is ready once each has printed `podium: ready`
(its consumer group assignment is done) and 20 warm-up workflows went through.
The driver (this process) uses `podium.client.Client`: trigger, await the
workflow's end on `podium.workflows`, check the output (n + 5).

Extras in the result: per-process CPU during the throughput run (conductor or
tracker, services, broker, driver), and a breakdown of the latency run from the
conductor's (tracker's) changelog: trigger -> conductor (tracker) start, each
task's Running -> Succeeded as the conductor (tracker) saw it, its end -> driver.

With `PODIUM_BENCH_PROFILE=DIR` (run.py `--profile DIR`) py-spy samples the
conductor (tracker) and the s3 service (or the one service process) during
the throughput run and writes `DIR/<system>-<process>.txt` (raw stacks;
`python benchmarks/profile_summary.py DIR/*.txt` for the hot spots).

    python benchmarks/orchestration.py [run.py options]     # run.py --systems orchestration
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from floor import broker_pid, cpu_seconds
from harness import closed_loop, percentile, sequential_latencies
from shapes import SHAPES, Shape
from wire_driver import WireClient

from podium.client import Client, prepare_topics
from podium.events import topics
from podium.runtime.changelog import read_partitions
from podium.runtime.kafka import fetch_wait_ms, learn_broker
from podium.runtime.settings import Settings
from podium.workflow.catalog import Catalog
from podium.workflow.loader import load_definition

ROOT = Path(__file__).resolve().parent.parent
LOOPSTATS = ROOT / "benchmarks" / "loopstats.py"
LOOPSTATS_LINE = b"podium-loopstats: "
DEFINITIONS = ROOT / "benchmarks" / "chain"  # every process: --definitions benchmarks/chain
DEFINITION = DEFINITIONS / "chain.yaml"
READY_TIMEOUT_S = 60.0
WORKFLOW_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
WARMUP = 20
PROFILED_SERVICE = {"per-step": "service-s3", "one-process": "service-all"}


@dataclass(frozen=True)
class Mode:
    """What differs between the two modes, for the benchmark."""

    name: str  # the trigger's mode
    coordinator: str  # the podium command that is not a service: conductor or tracker
    changelog: str  # where that process writes its workflow state snapshots
    service_args: tuple[str, ...]  # extra `podium service` options


MODES = {
    "orchestration": Mode("orchestration", "conductor", topics.CONDUCTOR_CHANGELOG, ()),
    "choreography": Mode(
        "choreography", "tracker", topics.TRACKER_CHANGELOG, ("--mode", "choreography")
    ),
}


# --- the processes ----------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    process: asyncio.subprocess.Process
    log: Path
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    loopstats: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    pump: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


async def spawn(
    name: str, args: list[str], bootstrap: str, logs: Path, definitions: Path = DEFINITIONS
) -> Proc:
    """Start `python -m podium ARGS` from the repository root; stderr goes to a log file."""
    env = {**os.environ, "PODIUM_BOOTSTRAP_SERVERS": bootstrap}
    # loopstats.py is `podium` with its consume loops timed (PODIUM_BENCH_LOOPSTATS=1)
    command = [str(LOOPSTATS)] if os.environ.get("PODIUM_BENCH_LOOPSTATS") else ["-m", "podium"]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        *args,
        "--definitions",
        str(definitions),
        "--bootstrap-servers",
        bootstrap,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    proc = Proc(name, process, logs / f"{name}.log")
    proc.pump = asyncio.create_task(_pump(proc))
    return proc


async def _pump(proc: Proc) -> None:
    """Copy the child's stderr to its log file; flag `podium: ready`."""
    assert proc.process.stderr is not None
    with proc.log.open("wb") as out:
        async for line in proc.process.stderr:
            out.write(line)
            out.flush()
            if line.startswith(b"podium: ready"):
                proc.ready.set()
            elif line.startswith(LOOPSTATS_LINE):
                proc.loopstats.put_nowait(json.loads(line[len(LOOPSTATS_LINE) :]))


async def wait_ready(procs: list[Proc], timeout: float = READY_TIMEOUT_S) -> None:
    async def one(proc: Proc) -> None:
        ready = asyncio.create_task(proc.ready.wait())
        exited = asyncio.create_task(proc.process.wait())
        done, _ = await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        exited.cancel()
        if ready not in done:
            raise RuntimeError(f"{proc.name} exited ({proc.process.returncode}); see {proc.log}")

    async with asyncio.timeout(timeout):
        await asyncio.gather(*(one(p) for p in procs))


async def stop(procs: list[Proc]) -> dict[str, int | None]:
    """SIGTERM every process, wait for clean exits (kill after STOP_TIMEOUT_S)."""
    for proc in procs:
        if proc.process.returncode is None:
            proc.process.send_signal(signal.SIGTERM)
    codes: dict[str, int | None] = {}
    for proc in procs:
        try:
            codes[proc.name] = await asyncio.wait_for(proc.process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            proc.process.kill()
            await proc.process.wait()
            codes[proc.name] = None  # had to be killed
        if proc.pump is not None:
            await proc.pump
    return codes


# --- the driver -------------------------------------------------------------------------


class PodiumChain:
    """Triggers `bench_chain` workflows through the Client and awaits their ends."""

    def __init__(
        self,
        name: str,
        bootstrap: str,
        settings: Settings,
        layout: str,
        mode: Mode,
        shape: Shape = SHAPES["chain"],
    ) -> None:
        self.name = name
        self.bootstrap = bootstrap
        self.settings = settings
        self.layout = layout
        self.mode = mode
        self.shape = shape
        self.definition = load_definition(shape.definition)
        self.client: Client | WireClient = Client(bootstrap, settings)
        if os.environ.get("PODIUM_BENCH_DRIVER") == "wire":  # run.py --driver wire
            self.client = WireClient(bootstrap, fetch_wait_ms(bootstrap, settings.consumer))
        self.run_id = uuid.uuid4().hex[:8]
        self.next_id = 0
        self.procs: list[Proc] = []
        self.stats: dict[str, Any] = {"mode": mode.name, "layout": layout}
        #: workflow id -> (trigger sent, end received), time.time(), latency run only
        self._stamps: dict[str, tuple[float, float]] | None = None

    def workflow_id(self, i: int) -> str:
        return f"{self.run_id}-{i}"

    async def one(self, i: int, limit_s: float = WORKFLOW_TIMEOUT_S) -> None:
        sent = time.time()
        wid = await self.client.trigger(
            self.definition,
            self.shape.input(i),
            workflow_id=self.workflow_id(i),
            wait=False,
            mode=self.mode.name,
        )
        try:
            async with asyncio.timeout(limit_s):
                ended = await self.client.expect(wid)
        except TimeoutError:
            where = await self._where(wid)
            raise RuntimeError(f"workflow {wid} did not end in {limit_s}s: {where}") from None
        if self._stamps is not None:
            self._stamps[wid] = (sent, time.time())
        wrong = self.shape.check(i, ended.state, ended.output)
        if wrong is not None:
            raise RuntimeError(f"workflow {wid} ended {wrong}: {ended.error}")

    def _take(self, n: int) -> int:
        first, self.next_id = self.next_id, self.next_id + n
        return first

    async def warm_up(self) -> None:
        await self.one(self._take(1), limit_s=READY_TIMEOUT_S)
        await sequential_latencies(self.one, WARMUP, first=self._take(WARMUP))

    async def run_latency(self, n: int) -> list[float]:
        self._stamps = {}
        try:
            return await sequential_latencies(self.one, n, first=self._take(n))
        finally:
            stamps, self._stamps = self._stamps, None
            try:
                self.stats["latency_breakdown_p50_ms"] = await self._breakdown(stamps or {})
            except Exception as exc:  # a breakdown is a bonus, never a failure
                self.stats["latency_breakdown_error"] = repr(exc)

    async def run_throughput(self, n: int, concurrency: int) -> float:
        pids = {p.name: p.pid for p in self.procs}
        broker = broker_pid(self.bootstrap)
        if broker is not None:
            pids["broker"] = broker
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        driver_before = time.process_time()
        profilers = await self._start_profilers()
        self._signal_all(signal.SIGUSR1)  # loopstats: reset
        self._stamps = {}
        try:
            seconds = await closed_loop(self.one, n, concurrency, first=self._take(n))
        finally:
            stamps, self._stamps = self._stamps, None
        await self._stop_profilers(profilers)
        await self._collect_loopstats()
        with contextlib.suppress(Exception):
            self.stats["throughput_breakdown_p50_ms"] = await self._breakdown(stamps or {})
        cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        cpu["driver"] = time.process_time() - driver_before
        self.stats["cpu_s"] = {name: round(s, 2) for name, s in cpu.items()}
        self.stats["cpu_ms_per_workflow"] = {
            name: round(s * 1000 / n, 3) for name, s in cpu.items()
        }
        self.stats["cpu_share_of_wall"] = {name: round(s / seconds, 2) for name, s in cpu.items()}
        return seconds

    def _signal_all(self, signum: int) -> None:
        if os.environ.get("PODIUM_BENCH_LOOPSTATS"):
            for proc in self.procs:
                proc.process.send_signal(signum)

    async def _collect_loopstats(self) -> None:
        if not os.environ.get("PODIUM_BENCH_LOOPSTATS"):
            return
        self._signal_all(signal.SIGUSR2)  # loopstats: print
        stats = {}
        for proc in self.procs:
            with contextlib.suppress(TimeoutError):
                stats[proc.name] = await asyncio.wait_for(proc.loopstats.get(), 5)
        self.stats["loopstats"] = stats

    # -- the latency breakdown, from the conductor's (tracker's) changelog ----------------

    async def _breakdown(self, stamps: dict[str, tuple[float, float]]) -> dict[str, Any]:
        """p50 of each stage of the latency run's workflows (ms).

        Orchestration: trigger: driver send -> conductor started the workflow;
        s1..s5: the conductor emitted the command -> it applied the outcome (two
        hops and the handler); end: conductor finished the workflow -> the driver
        saw it. Choreography, the same read from the tracker, which only watches:
        s1 is the tracker's start -> it saw s1's outcome (trigger -> service s1
        -> outcome: two hops, the first one run in parallel with the tracker's
        own read of the trigger), sN (N > 1) the tracker saw s(N-1)'s outcome ->
        saw sN's (one hop: outcome -> service sN -> outcome).
        """
        last = await self._last_states(set(stamps))
        stages: dict[str, list[float]] = {}
        for wid, state in last.items():
            if "ended_at" not in state:
                continue  # its final snapshot was still coalescing when the run ended
            sent, received = stamps[wid]
            add = functools.partial(_add, stages)
            add("trigger", state["started_at"] - sent)
            running: dict[str, float] = {}
            for entry in state["history"]:
                task = entry.get("task_id")
                if task is None:
                    continue
                if entry["to_state"] == "Running":
                    running[task] = entry["time"]
                elif entry["to_state"] == "Succeeded" and task in running:
                    add(task, entry["time"] - running[task])
            add("end", received - state["ended_at"])
        return {
            "workflows": len(last),
            **{k: round(percentile(v, 50) * 1000, 2) for k, v in stages.items()},
        }

    async def _last_states(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        """The last changelog snapshot of each of these workflows."""
        last: dict[str, dict[str, Any]] = {}
        partitions = set(range(self.settings.partitions))
        async for record in read_partitions(
            self.bootstrap, self.mode.changelog, partitions, self.settings.consumer
        ):
            key = record.key.decode() if record.key else ""
            if key in ids and record.value:
                doc = orjson.loads(record.value)
                last[key] = doc.get("state", doc)  # {"mode", "state"} or a bare state
        return last

    async def _where(self, wid: str) -> str:
        """What the conductor's (tracker's) changelog says about a workflow that did not end."""
        who = self.mode.coordinator
        state = (await self._last_states({wid})).get(wid)
        if state is None:
            return f"no changelog snapshot (the {who} never started it)"
        tasks = {
            t: (v.get("status", "Pending"), v.get("attempts", 0)) for t, v in state["tasks"].items()
        }
        return f"{who} says {state['status']}, tasks {tasks}"

    # -- py-spy -----------------------------------------------------------------------------

    async def _start_profilers(self) -> list[asyncio.subprocess.Process]:
        out = os.environ.get("PODIUM_BENCH_PROFILE")
        if not out:
            return []
        profilers = []
        for proc in self.procs:
            if proc.name not in (self.mode.coordinator, PROFILED_SERVICE[self.layout]):
                continue
            target = Path(out) / f"{self.name}-{proc.name}.txt"
            profilers.append(
                await asyncio.create_subprocess_exec(
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(proc.pid),
                    "--format",
                    "raw",
                    "--rate",
                    "200",
                    "--nonblocking",
                    "--output",
                    str(target),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            )
        await asyncio.sleep(0.5)  # py-spy attaches before the load starts
        return profilers

    async def _stop_profilers(self, profilers: list[asyncio.subprocess.Process]) -> None:
        for profiler in profilers:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for profiler in profilers:
            await profiler.wait()


def _add(stages: dict[str, list[float]], name: str, seconds: float) -> None:
    stages.setdefault(name, []).append(seconds)


#: the orchestration driver's former name
OrchestrationChain = PodiumChain


@contextlib.asynccontextmanager
async def chain(
    bootstrap: str,
    layout: str = "per-step",
    name: str = "orchestration",
    mode: str = "orchestration",
    shape: Shape = SHAPES["chain"],
) -> AsyncIterator[PodiumChain]:
    """Podium as a harness system: topics, conductor/tracker + services, a warmed-up driver."""
    settings = Settings()
    await learn_broker(bootstrap)  # the driver's consumer parks its fetches as the parts do
    spec = MODES[mode]
    driver = PodiumChain(name, bootstrap, settings, layout, spec, shape)
    # compensations' types too: the saga's undo commands need their topics
    await prepare_topics(bootstrap, settings, Catalog([driver.definition]).task_types)
    logs = Path(tempfile.mkdtemp(prefix=f"podium-bench-{name}-"))
    started = time.perf_counter()
    procs = [await spawn(spec.coordinator, [spec.coordinator], bootstrap, logs, shape.definitions)]
    layouts = {
        "per-step": [[f"{shape.module}:{name}"] for name in shape.processes],
        "one-process": [[f"{shape.module}:services"]],
    }
    for refs in layouts[layout]:
        label = refs[0].rsplit(":", 1)[1]
        label = "all" if label == "services" else label
        args = ["service", *refs, *spec.service_args]
        procs.append(await spawn(f"service-{label}", args, bootstrap, logs, shape.definitions))
    driver.procs = procs
    try:
        await wait_ready(procs)
        ready_s = time.perf_counter() - started
        async with driver.client:
            await driver.warm_up()
            print(
                f"{name}: {len(procs)} processes ready in {ready_s:.1f}s (mode {mode}, "
                f"layout {layout}, "
                f"W={fetch_wait_ms(bootstrap, settings.consumer)} ms, "
                f"pids {' '.join(f'{p.name}={p.pid}' for p in procs)}, logs {logs})",
                flush=True,
            )
            yield driver
    finally:
        codes = await stop(procs)
        unclean = {k: v for k, v in codes.items() if v != 0}
        print(f"{name}: stopped (SIGTERM); exit codes {codes}", flush=True)
        if unclean:
            print(f"{name}: did not exit 0 on SIGTERM: {unclean}; see {logs}", flush=True)


def per_step(bootstrap: str) -> contextlib.AbstractAsyncContextManager[PodiumChain]:
    return chain(bootstrap, "per-step", "orchestration")


def one_process(bootstrap: str) -> contextlib.AbstractAsyncContextManager[PodiumChain]:
    return chain(bootstrap, "one-process", "orchestration-1proc")


if __name__ == "__main__":
    import run

    sys.exit(run.main(["--systems", "orchestration", *sys.argv[1:]]))
