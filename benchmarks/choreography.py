"""Podium choreography on the 5-task chain: the task services alone, plus the tracker.

Everything but the mode is `orchestration.py`'s (`MODES["choreography"]`): the
services run `podium service ... --mode choreography --definitions
benchmarks/chain`, each reacting to the triggers and outcomes itself; `podium
tracker --definitions benchmarks/chain` replaces the conductor and announces
each workflow's end on `podium.workflows`, which the driver's Client awaits;
triggers carry `mode="choreography"`. The per-stage breakdown is read from the
tracker's changelog (`podium.tracker.changelog`).

- `choreography` (per step): five service processes + the tracker;
- `choreography-1proc`: all five services in one process + the tracker.

    python benchmarks/choreography.py [run.py options]      # run.py --systems choreography
"""

from __future__ import annotations

import contextlib
import sys

from orchestration import PodiumChain, chain


def per_step(bootstrap: str) -> contextlib.AbstractAsyncContextManager[PodiumChain]:
    return chain(bootstrap, "per-step", "choreography", mode="choreography")


def one_process(bootstrap: str) -> contextlib.AbstractAsyncContextManager[PodiumChain]:
    return chain(bootstrap, "one-process", "choreography-1proc", mode="choreography")


if __name__ == "__main__":
    import run

    sys.exit(run.main(["--systems", "choreography", *sys.argv[1:]]))
