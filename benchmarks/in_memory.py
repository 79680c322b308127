"""The order saga on the in-memory bus: what a user's workflow test costs.

    python benchmarks/in_memory.py [--runs 20] [--out benchmarks/results/in_memory.json]

Each run is a whole `run_once` on a fresh bus: the services and the conductor
(or the participants and the tracker) start, the saga runs, everything stops.
Figures: the run's wall time (start-up and shut-down included) and the
workflow's own time (its started_at to ended_at), per mode and outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from examples.order.shop import services  # noqa: E402
from podium.events import Mode  # noqa: E402
from podium.oneshot import run_once  # noqa: E402
from podium.runtime import memory  # noqa: E402
from podium.runtime.settings import Settings  # noqa: E402
from podium.workflow.loader import load_definition  # noqa: E402

ORDER = load_definition(ROOT / "examples" / "order" / "order.yaml")
AMOUNTS = {"Succeeded": 30, "Compensated": 5000}


async def one(mode: Mode, amount: int, run: int) -> tuple[float, float, str]:
    address = f"memory://bench-{mode}-{amount}-{run}"
    started = time.perf_counter()
    try:
        _, ended = await run_once(
            ORDER,
            services,
            {"sku": "A-1", "qty": 2, "amount": amount},
            bootstrap_servers=address,
            settings=Settings(bootstrap_servers=address),
            mode=mode,
            timeout=30,
        )
    finally:
        memory.drop(address)
    wall = (time.perf_counter() - started) * 1000
    own = (
        datetime.fromisoformat(ended.ended_at) - datetime.fromisoformat(ended.started_at)
    ).total_seconds() * 1000
    return wall, own, ended.state


async def main(runs: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for mode in Mode:
        for expected, amount in AMOUNTS.items():
            walls, owns = [], []
            for run in range(runs):
                wall, own, state = await one(mode, amount, run)
                assert state == expected, state
                walls.append(wall)
                owns.append(own)
            figures[f"{mode}/{expected}"] = {
                "run_ms_p50": round(statistics.median(walls), 1),
                "run_ms_max": round(max(walls), 1),
                "workflow_ms_p50": round(statistics.median(owns), 2),
            }
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/in_memory.json")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(main(args.runs))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
