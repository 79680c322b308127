"""Overload: N triggers published at once against one conductor (or tracker) and one
service process per task type, on a fresh broker per mode.

The system is `orchestration.chain` (the 5-task chain, `per-step` layout: a process per
service, plus `podium conductor` or `podium tracker`). After its warm-up, the driver
publishes all N triggers as fast as its producer takes them, then waits for every
workflow's end on `podium.workflows`. Reported per mode: how long the publishing took,
the time until the last end, completed / failed / lost (no end within the limit), the
peak resident memory of each process (`VmHWM` of /proc, and a 1 s sample of `VmRSS`
for the curve's maximum), and the rebalances each process went through (partition
assignments in its log beyond the first).

    python benchmarks/overload.py [--n 50000] [--modes orchestration,choreography]
                                  [--broker tansu|apache-kafka] [--limit-s 1800]
                                  [--out benchmarks/results/overload.json]

The broker is PODIUM_BOOTSTRAP_SERVERS when set, else a fresh one per mode of the
`--broker` kind (`brokers.py`). The results file keeps the runs of other modes and
brokers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import brokers
from orchestration import broker_pid, chain

from podium.runtime.settings import Settings

ROOT = Path(__file__).resolve().parent
#: one line per partition assignment: a worker's, a participant's, a conductor's (tracker's)
ASSIGNED = re.compile(rb"assigned \d+ partition|restored \d+ workflow")
#: one mode's figures, as written to the results file
Run = dict[str, Any]


def status_kb(pid: int, field: str) -> int | None:
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM), or None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Sampler:
    """Samples the resident memory of some processes every `every` seconds."""

    def __init__(self, pids: dict[str, int], every: float = 1.0) -> None:
        self.pids = pids
        self.every = every
        self.samples: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._started = time.perf_counter()

    def sample(self) -> dict[str, Any]:
        row: dict[str, Any] = {"t": round(time.perf_counter() - self._started, 1)}
        for name, pid in self.pids.items():
            row[name] = status_kb(pid, "VmRSS")
        self.samples.append(row)
        return row

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.every)

    def __enter__(self) -> Sampler:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    def peak_mb(self, name: str) -> float | None:
        values = [s[name] for s in self.samples if s.get(name) is not None]
        return round(max(values) / 1024, 1) if values else None


def rebalances(log: Path) -> int:
    """Partition assignments in a process's log beyond its first one."""
    return max(0, len(ASSIGNED.findall(log.read_bytes())) - 1) if log.exists() else -1


async def overload(bootstrap: str, mode: str, n: int, limit_s: float) -> dict[str, Any]:
    async with chain(bootstrap, "per-step", f"overload-{mode}", mode) as driver:
        pids = {p.name: p.pid for p in driver.procs}
        broker = broker_pid(bootstrap)
        if broker is not None:
            pids["broker"] = broker
        first = driver.next_id
        ids = [driver.workflow_id(first + i) for i in range(n)]
        with Sampler(pids) as sampler:
            started = time.perf_counter()
            for i, wid in enumerate(ids):
                await driver.client.trigger(
                    driver.definition, {"n": i}, workflow_id=wid, wait=False, mode=mode
                )
            await driver.client.flush()
            published = time.perf_counter() - started
            print(f"{mode}: {n} triggers published in {published:.1f}s", flush=True)
            ends = {wid: driver.client.expect(wid) for wid in ids}
            done, _ = await asyncio.wait(ends.values(), timeout=limit_s)
            last_end = time.perf_counter() - started
            peaks_hwm = {name: status_kb(pid, "VmHWM") for name, pid in pids.items()}
        succeeded = failed = wrong = 0
        for i, wid in enumerate(ids):
            future = ends[wid]
            if not future.done():
                continue
            ended = future.result()
            if ended.state != "Succeeded":
                failed += 1
            elif ended.output != {"n": i + 5}:
                wrong += 1
            else:
                succeeded += 1
        logs = {p.name: p.log for p in driver.procs}
    result = {
        "mode": mode,
        "n": n,
        "published_s": round(published, 1),
        "all_ended_s": round(last_end, 1),
        "workflows_per_s": round(len(done) / last_end, 1),
        "succeeded": succeeded,
        "failed": failed,
        "wrong_output": wrong,
        "lost": n - len(done),
        "not_ended": [wid for wid in ids if not ends[wid].done()][:20],
        "peak_rss_mb": {
            name: round(kb / 1024, 1) if kb is not None else sampler.peak_mb(name)
            for name, kb in peaks_hwm.items()
        },
        "peak_rss_sampled_mb": {name: sampler.peak_mb(name) for name in pids},
        "rebalances": {name: rebalances(log) for name, log in logs.items()},
        "rss_curve_mb": [
            {k: (round(v / 1024, 1) if k != "t" and v is not None else v) for k, v in s.items()}
            for s in sampler.samples[:: max(1, len(sampler.samples) // 40)]
        ],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "rss_curve_mb"}), flush=True)
    return result


def parser(doc: str, out: Path) -> argparse.ArgumentParser:
    """The options this and soak.py share: the modes, the broker, the results file."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--modes", default="orchestration,choreography")
    brokers.add_option(p)
    p.add_argument("--out", type=Path, default=out)
    return p


async def per_mode(args: argparse.Namespace, run: Callable[[str, str], Awaitable[Run]]) -> int:
    """`run(bootstrap, mode)` for each mode, on a fresh broker each; the runs written."""
    results = []
    for mode in args.modes.split(","):
        with brokers.broker(args.broker, Settings().bootstrap_servers) as bootstrap:
            results.append({"broker": args.broker, **await run(bootstrap, mode)})
    return write_runs(args.out, results)


async def main(argv: list[str]) -> int:
    p = parser(__doc__, ROOT / "results" / "overload.json")
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--limit-s", type=float, default=1800.0)
    args = p.parse_args(argv)
    return await per_mode(
        args, lambda bootstrap, mode: overload(bootstrap, mode, args.n, args.limit_s)
    )


def write_runs(out: Path, results: list[Run]) -> int:
    """Write these runs into `out`, keeping the runs already there of other modes or
    brokers; exit status 0 when none of these runs lost or failed a workflow."""
    ok = all(r["lost"] == 0 and r["failed"] == 0 for r in results)
    with contextlib.suppress(FileNotFoundError):
        previous = json.loads(out.read_text())
        new = {(r["mode"], r["broker"]) for r in results}
        kept = [
            r for r in previous.get("runs", []) if (r["mode"], r.get("broker", "tansu")) not in new
        ]
        results = [*kept, *results]
    out.write_text(json.dumps({"runs": results}, indent=2) + "\n")
    print(f"written {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
