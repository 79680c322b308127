"""`--kill TARGET@SECONDS`: what it names, and what recovering from it measured.

TARGET is one of the user's services, killed and restarted in both modes, or
`conductor`: orchestration's conductor and, in choreography, the tracker, the process
that holds the workflows' state and announces their ends there. SECONDS counts from the
start of the mode's measured runs. The figures are computed here from times alone (no
clock, no processes), all in seconds of the mode's measured time.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from podium.events import Mode

#: the target that names each mode's coordinator
COORDINATOR = "conductor"


class KillError(ValueError):
    """A `--kill` option that names nothing, or no time."""


@dataclass(frozen=True)
class Kill:
    target: str
    at_s: float

    def role(self, mode: Mode) -> str:
        """What this kill stops in `mode`: a service's name, `conductor` or `tracker`."""
        if self.target != COORDINATOR:
            return self.target
        return "conductor" if mode == Mode.ORCHESTRATION else "tracker"


def parse_kill(text: str, services: list[str]) -> Kill:
    target, sep, seconds = text.rpartition("@")
    if not sep or not target:
        raise KillError(f"--kill {text!r}: expected TARGET@SECONDS, e.g. payments@5")
    known = [*services, COORDINATOR]
    if target not in known:
        raise KillError(f"--kill {text!r}: no {target!r} to kill; known: {', '.join(known)}")
    try:
        at = float(seconds)
    except ValueError:
        raise KillError(f"--kill {text!r}: {seconds!r} is not a number of seconds") from None
    if not 0 < at < 3600:
        raise KillError(f"--kill {text!r}: the time must be above 0 and below 3600 s")
    return Kill(target, at)


def parse_kills(texts: list[str], services: list[str]) -> tuple[Kill, ...]:
    kills = tuple(parse_kill(t, services) for t in texts)
    targets = [k.target for k in kills]
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise KillError(f"--kill: {', '.join(twice)} named more than once")
    return kills


@dataclass(eq=False)  # one per kill and mode, told apart by identity
class KillRecord:
    """One kill in one mode, as it happened."""

    kill: Kill
    role: str
    killed_at: float | None = None  # None: the mode's runs ended before its time
    ready_at: float | None = None  # the restarted process had its partitions again


def recovery(
    record: KillRecord, spans: list[tuple[float, float]], measured_s: float
) -> dict[str, Any]:
    """What a kill cost, from each workflow's (triggered, ended) times in the mode.

    - `caught`: workflows running when the process died or triggered before its
      restarted successor had its partitions (the ones the outage can hold up);
    - `recovered_s`: from the kill to the end of the last of those: by then the mode
      works as before;
    - `restart_ready_s`: from the kill until the restarted process had its partitions;
    - `longest_gap_s`: the longest stretch without any workflow ending, from the last
      end before the kill to the recovery;
    - `slowest_caught_ms`: the slowest of the caught workflows.
    """
    base: dict[str, Any] = {
        "target": record.kill.target,
        "role": record.role,
        "at_s": record.kill.at_s,
    }
    if record.killed_at is None:
        return base | {"killed": False, "note": f"the mode's runs ended at {measured_s:.1f} s"}
    k = record.killed_at
    back = record.ready_at if record.ready_at is not None else k
    caught = [(start, end) for start, end in spans if start < back and end > k]
    recovered = max((end for _, end in caught), default=k)
    ends = sorted(end for _, end in spans)
    window = [max((e for e in ends if e <= k), default=0.0)]
    window += [e for e in ends if k < e <= recovered]
    gaps = [b - a for a, b in itertools.pairwise(window)]
    return base | {
        "killed": True,
        "killed_at_s": round(k, 3),
        "restart_ready_s": round(record.ready_at - k, 3) if record.ready_at is not None else None,
        "caught": len(caught),
        "recovered_s": round(recovered - k, 3),
        "longest_gap_s": round(max(gaps, default=0.0), 3),
        "slowest_caught_ms": round(max(e - s for s, e in caught) * 1000, 1) if caught else None,
    }
