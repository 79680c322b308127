"""Run a `podium` command with its consume loop timed: where the wall time of the loop goes.

    python benchmarks/loopstats.py conductor --definitions ...     # = podium conductor ...
    python benchmarks/loopstats.py service MODULE:OBJ ...          # = podium service ...
    python benchmarks/loopstats.py tracker --definitions ...       # = podium tracker ...

Wraps (in this process only, nothing in the package changes) aiokafka's
`getmany` and `commit`, the conductor's (tracker's) `_process` (and `_flush`
where it still exists), the worker's `_run` and the choreography participant's
`_process` and `_run`, summing wall time per consumer group or process part.
SIGUSR1 resets the counters; SIGUSR2 prints one line `podium-loopstats: {json}`
on stderr. orchestration.py uses it with `PODIUM_BENCH_LOOPSTATS=1` around the
throughput run.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer

_stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])  # count, seconds, records
_since = time.perf_counter()


def _timed(name: Callable[[Any], str], records: bool = False) -> Callable[[Any], Any]:
    def wrap(method: Any) -> Any:
        @functools.wraps(method)
        async def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            result = await method(self, *args, **kwargs)
            entry = _stats[name(self)]
            entry[0] += 1
            entry[1] += time.perf_counter() - start
            if records and isinstance(result, dict):
                entry[2] += sum(len(v) for v in result.values())
            return result

        return timed

    return wrap


def _group(prefix: str) -> Callable[[Any], str]:
    return lambda consumer: f"{prefix} {consumer._group_id}"


def _patch(cls: type, method: str, name: Callable[[Any], str], records: bool = False) -> None:
    """Time cls.method if it exists (the loops change; a missing one is skipped)."""
    if hasattr(cls, method):
        setattr(cls, method, _timed(name, records)(getattr(cls, method)))


def install() -> None:
    from podium.runtime.loop import Loop
    from podium.services.participant import Participant
    from podium.services.worker import Worker

    _patch(AIOKafkaConsumer, "getmany", _group("getmany"), records=True)
    _patch(AIOKafkaConsumer, "commit", _group("commit"))
    _patch(Loop, "_process", lambda loop: f"{loop.spec.name}._process")
    _patch(Worker, "_run", lambda w: f"worker._run {w.service.name} (handler+ack)")
    _patch(Participant, "_run", lambda p: f"participant._run {p.service.name} (handler+ack)")
    signal.signal(signal.SIGUSR1, _reset)
    signal.signal(signal.SIGUSR2, _dump)


def _reset(*_: object) -> None:
    global _since
    _stats.clear()
    _since = time.perf_counter()


def _dump(*_: object) -> None:
    wall = time.perf_counter() - _since
    out = {
        "wall_s": round(wall, 3),
        **{
            name: {
                "calls": int(n),
                "seconds": round(s, 3),
                "share_of_wall": round(s / wall, 3) if wall else None,
                "mean_ms": round(s * 1000 / n, 3) if n else None,
                **({"records": int(r), "per_call": round(r / n, 1)} if r else {}),
            }
            for name, (n, s, r) in sorted(_stats.items())
        },
    }
    print(f"podium-loopstats: {json.dumps(out)}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    install()
    from podium.cli import main

    sys.argv = ["podium", *sys.argv[1:]]
    main()
