"""Which mode won what, and the one-line answer built from it.

A criterion compares one figure of both modes; a mode wins it when its figure is better
by more than `EVEN` (5 %), the same within that. The *performance* criteria (latency,
throughput, recovery) decide which mode the headline names; the others (what goes over
the wire, CPU, what a change costs) are what the other mode offers in exchange.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from podium.events import Mode

#: closer than this, relatively, is a draw
EVEN = 0.05
ORCH, CHOREO = Mode.ORCHESTRATION.value, Mode.CHOREOGRAPHY.value


@dataclass(frozen=True)
class Criterion:
    name: str
    unit: str
    orchestration: float | None
    choreography: float | None
    lower_is_better: bool
    performance: bool
    #: the mode that did better, or None (a draw, or a figure missing)
    better: str | None
    #: how many times better (>= 1), when one was
    by: float | None
    #: what the winner gets, as the headline says it
    phrase: str


def _compare(
    name: str,
    unit: str,
    o: float | None,
    c: float | None,
    *,
    lower_is_better: bool = True,
    performance: bool = False,
    says: str,
) -> Criterion:
    better = by = None
    if o is not None and c is not None and o > 0 and c > 0:
        least, most = sorted((o, c))
        if most / least > 1 + EVEN:
            better = (ORCH if o < c else CHOREO) if lower_is_better else (ORCH if o > c else CHOREO)
            by = round(most / least, 2)
    low, high = sorted((o or 0, c or 0))
    pct = round((1 - low / high) * 100) if high else 0
    phrase = says.format(by=by or 1.0, pct=pct, low=low, high=high)
    return Criterion(name, unit, o, c, lower_is_better, performance, better, by, phrase)


def _sum(values: dict[str, float]) -> float:
    return sum(values.values())


def _cpu(mode: dict[str, Any]) -> float | None:
    cpu = mode["cpu_ms_per_workflow"]
    if cpu["broker"] is None:
        return None
    return float(cpu["process"] + cpu["broker"] + sum(cpu.get("parts", {}).values()))


def _killed(ro: dict[str, Any], rc: dict[str, Any]) -> str:
    return ro["role"] if ro["role"] == rc["role"] else f"{ro['role']} ({rc['role']})"


def scorecard(doc: dict[str, Any]) -> list[Criterion]:
    o, c = doc[ORCH], doc[CHOREO]
    rows = [
        _compare("latency p50", "ms", o["p50"], c["p50"], performance=True,
                 says="a {by:.2f}x lower median latency"),
        _compare("latency p99", "ms", o["p99"], c["p99"], performance=True,
                 says="a {by:.2f}x lower tail (p99)"),
        _compare("throughput", "workflows/s", o["workflows_per_s"], c["workflows_per_s"],
                 lower_is_better=False, performance=True, says="{by:.2f}x the throughput"),
    ]  # fmt: skip
    for k, (ro, rc) in enumerate(zip(o["recovery"], c["recovery"], strict=True)):
        if ro["killed"] and rc["killed"]:
            rows.append(
                _compare(
                    f"recovery from kill {doc['kills'][k]}",
                    "s",
                    ro["recovered_s"],
                    rc["recovered_s"],
                    performance=True,
                    says=f"a {{by:.1f}}x faster recovery from the {_killed(ro, rc)} kill",
                )
            )
    so, sc = o["structure"], c["structure"]
    rows += [
        _compare("Kafka messages / workflow", "", _sum(o["messages_per_workflow"]),
                 _sum(c["messages_per_workflow"]), says="{pct}% fewer Kafka messages"),
        _compare("bytes / workflow", "B", _sum(o["bytes_per_workflow"]),
                 _sum(c["bytes_per_workflow"]), says="{pct}% fewer bytes on the wire"),
        _compare("CPU / workflow (all processes + broker)", "ms", _cpu(o), _cpu(c),
                 says="{by:.2f}x less CPU a workflow"),
        _compare("processes that read the definition", "", len(so["knows_the_definition"]),
                 len(sc["knows_the_definition"]),
                 says="a definition change redeploys {low:g} process(es), not {high:g}"),
        _compare("topics", "", so["topics"], sc["topics"], says="{pct}% fewer topics"),
    ]  # fmt: skip
    return rows


def headline(name: str, rows: list[Criterion]) -> str:
    """`<Mode> for <workflow>: <its wins>. <Other mode>: <its wins>.`"""
    wins = {mode: [r for r in rows if r.better == mode] for mode in (ORCH, CHOREO)}
    score = {mode: sum(r.performance for r in wins[mode]) for mode in (ORCH, CHOREO)}
    if score[ORCH] == score[CHOREO]:  # a draw on performance: the median decides, then nothing
        p50 = rows[0]
        first = p50.better
    else:
        first = ORCH if score[ORCH] > score[CHOREO] else CHOREO
    if first is None:
        return (
            f"Neither mode is faster for {name}: "
            f"{_list(wins[ORCH]) or 'no clear win'} with orchestration; "
            f"{_list(wins[CHOREO]) or 'no clear win'} with choreography."
        )
    other = CHOREO if first == ORCH else ORCH
    text = f"{first.capitalize()} for {name}: {_list(wins[first]) or 'no clear win'}."
    if wins[other]:
        text += f" {other.capitalize()} gives {_list(wins[other])}."
    return text


def _list(rows: list[Criterion]) -> str:
    phrases = [r.phrase for r in rows]
    if len(phrases) <= 1:
        return "".join(phrases)
    return f"{', '.join(phrases[:-1])} and {phrases[-1]}"


def as_json(rows: list[Criterion]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
