"""Soak: a steady load for N minutes per mode; is anything growing?

The system is `orchestration.chain` (the 5-task chain, a process per service plus the
conductor or tracker) on a fresh broker per mode (`--broker`, as overload.py). The
driver triggers workflows at a fixed rate (open loop) for `--minutes`, then waits for
the last ends. Sampled:

- the resident memory (VmRSS) of every process, the broker's included, every 5 s;
- at the end of the first minute, every 5 minutes, and after the last ends: each state
  changelog's records (tombstones among them) and bytes, its live keys, and its restore
  time (`podium.runtime.changelog.restore` over every partition with the role's own
  snapshot parser: what a restarted conductor, tracker or participant does before it
  takes work).

"Flat" means: last minute's mean RSS against the first's, and restore time and
changelog size per workflow still in memory, not per workflow ever run. tansu keeps
every record (compaction is accepted and ignored), so its changelogs grow by design.

    python benchmarks/soak.py [--minutes 20] [--rate 40] [--modes orchestration,choreography]
                              [--broker tansu|apache-kafka] [--changelog-config KEY=VALUE]
                              [--out benchmarks/results/soak.json]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestration import broker_pid, chain
from overload import Sampler, parser, per_mode

from podium.conductor import snapshot as conductor_snapshot
from podium.events import topics
from podium.runtime.changelog import read_partitions, restore
from podium.runtime.kafka import COMPACTED, ensure_topics
from podium.runtime.settings import Settings
from podium.services import snapshot as service_snapshot

ROOT = Path(__file__).resolve().parent
SERVICES = [f"bench-s{i}" for i in range(1, 6)]
#: the changelogs are measured at 60 s, then this often (the trigger loop waits meanwhile
#: and catches up after: a restore takes seconds)
MEASURE_EVERY_S = 300.0


def changelogs(mode: str) -> dict[str, Callable[[bytes], Any]]:
    """Every state changelog of the mode, with the parser its owner restores it with."""
    if mode == "orchestration":
        return {topics.CONDUCTOR_CHANGELOG: conductor_snapshot.decode}
    return {
        topics.TRACKER_CHANGELOG: conductor_snapshot.decode,
        **{topics.choreography_changelog(s): service_snapshot.decode for s in SERVICES},
    }


async def measure_changelogs(bootstrap: str, driver: Any, mode: str) -> dict[str, Any]:
    partitions = set(range(driver.settings.partitions))
    found: dict[str, Any] = {}
    for topic, parse in changelogs(mode).items():
        records = size = tombstones = 0
        async for record in read_partitions(bootstrap, topic, partitions):
            records += 1
            tombstones += record.value is None
            size += len(record.value or b"") + len(record.key or b"")
        started = time.perf_counter()
        keys = await restore(bootstrap, topic, partitions, parse)
        found[topic] = {
            "records": records,
            "tombstones": tombstones,
            "mb": round(size / 1e6, 2),
            "live_keys": len(keys),
            "restore_s": round(time.perf_counter() - started, 2),
        }
    return found


async def soak(bootstrap: str, mode: str, minutes: float, rate: float) -> dict[str, Any]:
    async with chain(bootstrap, "per-step", f"soak-{mode}", mode) as driver:
        pids = {p.name: p.pid for p in driver.procs}
        broker = broker_pid(bootstrap)
        if broker is not None:
            pids["broker"] = broker
        ends: dict[str, tuple[int, asyncio.Future[Any]]] = {}
        snapshots: dict[str, Any] = {}
        duration = minutes * 60
        with Sampler(pids, every=5.0) as sampler:
            started = time.perf_counter()
            i = 0
            due_measure = min(60.0, duration / 2)
            while (elapsed := time.perf_counter() - started) < duration:
                due = int(elapsed * rate)
                while i < due:
                    wid = driver.workflow_id(driver.next_id + i)
                    await driver.client.trigger(
                        driver.definition, {"n": i}, workflow_id=wid, wait=False, mode=mode
                    )
                    ends[wid] = (i, driver.client.expect(wid))
                    i += 1
                if elapsed >= due_measure:  # the first at 60 s, then every 5 minutes
                    measured = {
                        "at_s": round(elapsed),
                        **await measure_changelogs(bootstrap, driver, mode),
                    }
                    snapshots.setdefault("first", measured)
                    snapshots.setdefault("during", []).append(measured)
                    due_measure += MEASURE_EVERY_S
                await asyncio.sleep(0.05)
            sent = i
            futures = [f for _, f in ends.values()]
            done, _ = await asyncio.wait(futures, timeout=120)
            snapshots["last"] = {
                "at_s": round(time.perf_counter() - started),
                **await measure_changelogs(bootstrap, driver, mode),
            }
        failed = sum(1 for f in done if f.result().state != "Succeeded")
        wrong = sum(
            1
            for n, f in ends.values()
            if f.done() and f.result().state == "Succeeded" and f.result().output != {"n": n + 5}
        )
    minute = 60 / sampler.every
    first, last = sampler.samples[: int(minute)], sampler.samples[-int(minute) :]

    def mean_mb(rows: list[dict[str, Any]], name: str) -> float | None:
        values = [r[name] for r in rows if r.get(name) is not None]
        return round(statistics.mean(values) / 1024, 1) if values else None

    result = {
        "mode": mode,
        "minutes": minutes,
        "rate_per_s": rate,
        "sent": sent,
        "succeeded": len(done) - failed - wrong,
        "failed": failed,
        "wrong_output": wrong,
        "lost": sent - len(done),
        "rss_mb_first_minute": {n: mean_mb(first, n) for n in pids},
        "rss_mb_last_minute": {n: mean_mb(last, n) for n in pids},
        "peak_rss_mb": {n: sampler.peak_mb(n) for n in pids},
        "changelogs": snapshots,
        "rss_curve_mb": [
            {k: (round(v / 1024, 1) if k != "t" and v is not None else v) for k, v in s.items()}
            for s in sampler.samples
        ],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "rss_curve_mb"}), flush=True)
    return result


async def main(argv: list[str]) -> int:
    p = parser(__doc__, ROOT / "results" / "soak.json")
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--rate", type=float, default=40.0, help="workflows started per second")
    p.add_argument(
        "--changelog-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a topic config of the changelogs, created with it before the system starts "
        "(e.g. segment.ms=60000: Kafka compacts only rolled segments, hourly by default)",
    )
    args = p.parse_args(argv)
    configs = dict(kv.split("=", 1) for kv in args.changelog_config)

    async def run(bootstrap: str, mode: str) -> dict[str, Any]:
        if configs:
            await create_changelogs(bootstrap, mode, configs)
        return {"changelog_config": configs, **await soak(bootstrap, mode, args.minutes, args.rate)}

    return await per_mode(args, run)


async def create_changelogs(bootstrap: str, mode: str, configs: dict[str, str]) -> None:
    """The mode's changelogs as Podium creates them, with these configs on top."""
    settings = Settings()
    await ensure_topics(
        bootstrap,
        changelogs(mode),
        settings.partitions,
        replication_factor=settings.replication_factor,
        configs={**COMPACTED, **configs},
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
