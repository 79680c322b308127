"""Reusable pieces of the chain benchmarks: percentiles, results, the closed-loop drivers.

A *system* is anything that runs the 5-step chain. It plugs in as a factory
`(bootstrap_servers) -> async context manager yielding a Chain`: entering it
starts the system and returns only once it is ready for work (consumer groups
assigned); leaving it stops everything. A `Chain` has two coroutines:

    async def run_latency(n) -> list[float]                 # seconds per workflow, sequential
    async def run_throughput(n, concurrency) -> float       # wall seconds for n workflows

Most systems only know how to run *one* workflow end to end
(`async def one(i) -> None`); `sequential_latencies` and `closed_loop` turn that
into the two measurements.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

RESULTS_DIR = Path(__file__).resolve().parent / "results"
STEPS = 5


class Chain(Protocol):
    async def run_latency(self, n: int) -> list[float]: ...

    async def run_throughput(self, n: int, concurrency: int) -> float: ...


SystemFactory = Callable[[str], AbstractAsyncContextManager[Chain]]
OneWorkflow = Callable[[int], Awaitable[None]]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Result:
    system: str
    p50: float  # ms, one workflow alone
    p95: float
    p99: float
    workflows_per_s: float
    tasks_per_s: float
    n: int  # workflows in the throughput run
    concurrency: int
    latency_n: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


async def sequential_latencies(one: OneWorkflow, n: int, first: int = 0) -> list[float]:
    """Run n workflows one after another; seconds each took."""
    out = []
    for i in range(first, first + n):
        start = time.perf_counter()
        await one(i)
        out.append(time.perf_counter() - start)
    return out


async def closed_loop(one: OneWorkflow, n: int, concurrency: int, first: int = 0) -> float:
    """Run n workflows keeping `concurrency` in flight; wall seconds for all of them."""
    ids = iter(range(first, first + n))

    async def worker() -> None:
        for i in ids:  # a shared iterator: each id is taken by exactly one worker
            await one(i)

    start = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(min(concurrency, n)):
            tg.create_task(worker())
    return time.perf_counter() - start


async def measure(
    name: str,
    factory: SystemFactory,
    bootstrap: str,
    *,
    latency_n: int = 300,
    throughput_n: int = 3_000,
    concurrency: int = 100,
    steps: int = STEPS,
) -> Result:
    """Start one system, measure latency then throughput, stop it."""
    async with factory(bootstrap) as chain:
        lat = await chain.run_latency(latency_n)
        seconds = await chain.run_throughput(throughput_n, concurrency)
        stats = dict(getattr(chain, "stats", {}))  # optional extras a system reports
    rate = throughput_n / seconds
    ms = [x * 1000 for x in lat]
    return Result(
        system=name,
        p50=round(percentile(ms, 50), 2),
        p95=round(percentile(ms, 95), 2),
        p99=round(percentile(ms, 99), 2),
        workflows_per_s=round(rate, 1),
        tasks_per_s=round(rate * steps, 1),
        n=throughput_n,
        concurrency=concurrency,
        latency_n=len(lat),
        extra={
            "throughput_seconds": round(seconds, 3),
            "mean_ms": round(sum(ms) / len(ms), 2),
            "max_ms": round(max(ms), 2),
            **stats,
        },
    )


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "host": platform.node()}


def write_results(path: Path, results: Sequence[Result], **meta: Any) -> dict[str, Any]:
    """Merge results into a JSON file keyed by system name; returns the whole document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    systems = doc.setdefault("systems", {})
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    for r in results:
        systems[r.system] = {**asdict(r), "measured_at": stamp}
    doc["machine"] = machine()
    doc.update(meta)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned text table."""
    cells = [[str(c) for c in columns]] + [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(line, widths, strict=True)) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if value >= 100 else f"{value:.2f}"
    return "" if value is None else str(value)


RESULT_COLUMNS = (
    "system",
    "p50",
    "p95",
    "p99",
    "workflows_per_s",
    "tasks_per_s",
    "n",
    "concurrency",
)


def print_results(results: Sequence[Result]) -> None:
    print("latency in ms (one workflow alone); throughput closed-loop")
    print(table([asdict(r) for r in results], RESULT_COLUMNS))
