"""Podium's own CPU per workflow, without a broker: the chain on the in-memory bus.

    python benchmarks/hot_path.py [--modes orchestration,choreography] [--n 3000]
                                  [--concurrency 100] [--profile DIR]
                                  [--out benchmarks/results/hot_path.json]

Every part of a deployment (the five chain services and the conductor, or the five
participants and the tracker) and the driver run in this one process, on the
in-memory bus (`memory://`), so the figure is the CPU the Python side spends on a
workflow: decoding, deciding, encoding, the runtime's loops, the bus's own small
share. It is CPU time, not wall time, so it barely moves with the machine's load,
which makes it the measure for hot-path changes; what a real broker adds is
`benchmarks/run.py`'s business. `--profile DIR` writes a cProfile of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import platform
import pstats
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import closed_loop  # noqa: E402

from benchmarks.chain import services as chain  # noqa: E402
from podium.client import Client, prepare_topics  # noqa: E402
from podium.events import Mode  # noqa: E402
from podium.oneshot import build_parts  # noqa: E402
from podium.runtime.settings import Settings  # noqa: E402
from podium.workflow.catalog import Catalog  # noqa: E402
from podium.workflow.loader import load_definition  # noqa: E402

CHAIN = load_definition(ROOT / "benchmarks" / "chain" / "chain.yaml")


async def run(
    mode: Mode, n: int, concurrency: int, profiler: cProfile.Profile | None
) -> dict[str, Any]:
    address = f"memory://hot-path-{mode}-{uuid.uuid4().hex[:6]}"
    settings = Settings(bootstrap_servers=address)
    catalog = Catalog([CHAIN])
    await prepare_topics(address, settings, catalog.task_types)
    parts = build_parts(catalog, chain.services, address, settings, mode)
    tasks = [asyncio.create_task(part.run()) for part in parts]
    try:
        await asyncio.wait_for(asyncio.gather(*(p.ready.wait() for p in parts)), 60)
        async with Client(address, settings) as client:

            async def one(i: int) -> None:
                wid = await client.trigger(CHAIN, {"n": 0}, wait=False, mode=mode.value)
                ended = await asyncio.wait_for(client.expect(wid), 60)
                if ended.output != {"n": 5}:
                    raise RuntimeError(f"workflow {wid} ended {ended.state}: {ended.output}")

            await closed_loop(one, min(200, n), concurrency)  # warm up
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            await closed_loop(one, n, concurrency)
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        for part in parts:
            part.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "mode": mode.value,
        "n": n,
        "concurrency": concurrency,
        "cpu_ms_per_workflow": round(cpu * 1000 / n, 3),
        "workflows_per_s_one_core": round(n / cpu, 1),
        "wall_s": round(wall, 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--modes", default="orchestration,choreography")
    p.add_argument("--n", type=int, default=3_000)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--profile", type=Path, default=None, metavar="DIR")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    rows = []
    for mode in map(Mode, args.modes.split(",")):
        profiler = cProfile.Profile() if args.profile else None
        rows.append(asyncio.run(run(mode, args.n, args.concurrency, profiler)))
        if profiler and args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            path = args.profile / f"hot-path-{mode.value}.prof"
            profiler.dump_stats(path)
            pstats.Stats(str(path)).sort_stats("tottime").print_stats(25)
    for row in rows:
        print(json.dumps(row))
    if args.out:
        machine = {"python": platform.python_version(), "host": platform.node()}
        args.out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
