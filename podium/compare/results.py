"""The figures of a comparison: one JSON-ready object per mode, the verdict, the table.

Latency percentiles come from an HdrHistogram (microsecond values, 3 significant
digits: within 0.1 %), as the benchmarks' load tools report them; `mean` is exact.
"""

from __future__ import annotations

import os
from typing import Any

from hdrh.histogram import HdrHistogram
from rich.console import Console
from rich.table import Table

from podium.compare.facts import longest_path, structure
from podium.compare.recovery import recovery
from podium.compare.runner import OUTCOMES, Measured, ModeRun, Options
from podium.compare.scorecard import EVEN, as_json, headline, scorecard
from podium.events import Mode
from podium.services.service import TaskService
from podium.workflow.definition import Definition

KINDS = ("triggers", "commands", "outcomes", "changelogs", "completions", "dead_letters")
#: bins of the throughput-over-time series
TIMELINE_BINS = 30
#: the narrowest bin, in seconds: fewer ends than that say little about a rate
MIN_BIN_S = 0.5


def summarise(
    definition: Definition, services: list[TaskService], options: Options, measured: Measured
) -> dict[str, Any]:
    facts = structure(definition, services)
    doc: dict[str, Any] = {
        "definition": definition.name,
        "version": definition.version,
        "runs": options.runs,
        "concurrency": options.concurrency,
        "fail_rate": options.fail_rate,
        "warmup": options.warmup,
        "broker": measured.broker,
        "elapsed_s": round(measured.elapsed_s, 2),
        "load_average": [round(x, 2) for x in measured.load],
        "cpus": os.cpu_count(),
        "latency_unit": "ms",
        "percentiles": "HdrHistogram, 3 significant digits",
        "cpu_note": (
            "every part runs in a process of its own (parts: CPU of each while its mode's runs "
            "went on, restarts included); process is the driver's"
            if options.processes
            else "both deployments and the driver run in this one process (but for a part "
            "--kill names, in its own, under parts): process CPU is theirs together while a "
            "mode's runs go on (the other mode idles beside it)"
        )
        + "; the broker's is its own process's, when it runs on this machine",
        "kills": [f"{k.target}@{k.at_s:g}" for k in options.kills],
        "schedule": (
            "each mode's runs in one block (a recovery is watched on an unbroken clock)"
            if options.kills
            else "blocks of runs, the modes alternating A B B A ..."
        ),
    }
    for mode, run in measured.runs.items():
        doc[mode.value] = _mode(run, options) | {"structure": facts[mode.value]}
    doc["verdict"] = verdict(definition, doc)
    rows = scorecard(doc)
    doc["headline"] = headline(definition.name, rows)
    doc["scorecard"] = as_json(rows)
    return doc


def _mode(run: ModeRun, options: Options) -> dict[str, Any]:
    latencies = [run.latency_s[i] for i in sorted(run.latency_s)]
    ended = [run.latency_s[i] for i, s in run.states.items() if s != "lost"]
    histogram = HdrHistogram(1, 3_600_000_000, 3)
    for seconds in ended:
        histogram.record_value(max(1, round(seconds * 1e6)))

    def pct(q: float) -> float | None:
        if not ended:
            return None
        # a bucket's value can sit just above the largest recorded one
        value = float(histogram.get_value_at_percentile(q)) / 1e6
        return round(min(value, max(ended)) * 1000, 3)

    outcomes = dict.fromkeys(OUTCOMES, 0)
    for state in run.states.values():
        outcomes[state] += 1
    ids = run.ids
    handler_s = sum(run.probe.handler_s.get(w, 0.0) for w in ids)
    calls = sum(run.probe.calls.get(w, 0) for w in ids)
    runs = max(1, len(latencies))
    active = run.active_s or float("nan")
    return {
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "max": round(max(ended) * 1000, 3) if ended else None,
        "mean": round(sum(ended) * 1000 / len(ended), 3) if ended else None,
        "outcomes": outcomes,
        "workflows_per_s": round(len(latencies) / active, 2),
        "tasks_per_s": round(calls / active, 2),
        "task_attempts_per_workflow": round(calls / runs, 3),
        "handler_ms_per_workflow": round(handler_s * 1000 / runs, 3),
        "task_overhead_ms": (
            round((sum(ended) - handler_s) * 1000 / calls, 3) if calls and ended else None
        ),
        "messages_per_workflow": {k: round(run.messages.get(k, 0) / runs, 3) for k in KINDS},
        "bytes_per_workflow": {k: round(run.bytes.get(k, 0) / runs, 1) for k in KINDS},
        "cpu_ms_per_workflow": {
            "process": round(run.process_cpu_s * 1000 / runs, 3),
            "broker": (
                round(run.broker_cpu_s * 1000 / runs, 3) if run.broker_cpu_s is not None else None
            ),
            "parts": {r: round(s * 1000 / runs, 3) for r, s in sorted(run.part_cpu_s.items())},
        },
        "measured_s": round(run.active_s, 3),
        "latencies_ms": [round(s * 1000, 3) for s in latencies],
        "throughput_timeline": _timeline(run),
        "recovery": [recovery(r, list(run.spans.values()), run.active_s) for r in run.kills],
        "recovery_timeline": (
            [
                {"t": round(end, 3), "latency_ms": round((end - start) * 1000, 3)}
                for start, end in sorted(run.spans.values(), key=lambda span: span[1])
            ]
            if run.kills
            else []
        ),
    }


def _timeline(run: ModeRun) -> list[dict[str, float]]:
    """Workflows ended per second over the mode's measured time, in equal bins."""
    if not run.ends_at or run.active_s <= 0:
        return []
    bins = max(1, min(TIMELINE_BINS, round(run.active_s / MIN_BIN_S)))
    width = run.active_s / bins
    counts = [0] * bins
    for at, _ in run.ends_at:
        counts[min(bins - 1, int(at / width))] += 1
    return [
        {"t": round((k + 0.5) * width, 3), "workflows_per_s": round(c / width, 2)}
        for k, c in enumerate(counts)
    ]


def total(messages: dict[str, float]) -> float:
    return sum(messages.values())


def verdict(definition: Definition, doc: dict[str, Any]) -> str:
    """Two or three sentences from the figures: which mode, by how much, at what cost."""
    o, c = doc[Mode.ORCHESTRATION.value], doc[Mode.CHOREOGRAPHY.value]
    lost = o["outcomes"]["lost"] + c["outcomes"]["lost"]
    if o["p50"] is None or c["p50"] is None:
        return f"{lost} workflow(s) were lost: no latency comparison is possible."
    setup = (
        f"For {definition.name} ({len(definition.tasks)} tasks, {doc['runs']} runs a mode at "
        f"concurrency {doc['concurrency']})"
    )
    low, high = sorted((o["p50"], c["p50"]))
    if high / low <= 1 + EVEN:
        medians = "the medians even"
    else:
        fast = Mode.ORCHESTRATION.value if o["p50"] < c["p50"] else Mode.CHOREOGRAPHY.value
        medians = f"{fast}'s median {high / low:.2f}x lower"
    sentences = [
        f"{setup}: p50 {o['p50']:.1f} ms in orchestration against {c['p50']:.1f} ms in "
        f"choreography ({medians}), p99 {o['p99']:.1f} against {c['p99']:.1f} ms, "
        f"{o['workflows_per_s']:.1f} against {c['workflows_per_s']:.1f} workflows/s."
    ]
    depth = longest_path(definition)
    om, cm = total(o["messages_per_workflow"]), total(c["messages_per_workflow"])
    oc, cc = o["messages_per_workflow"]["changelogs"], c["messages_per_workflow"]["changelogs"]
    sentences.append(
        f"Why: along its longest path ({depth} tasks) a workflow crosses Kafka {2 * depth + 2} "
        f"times in orchestration, each task a command out of the conductor and an outcome back, "
        f"against {depth + 2} in choreography, where each service hands on to the next; "
        f"choreography wrote {cm:.1f} messages a workflow against {om:.1f}, {cc:.1f} of them "
        f"changelog records against {oc:.1f} (each service also keeps its join state)."
    )
    sentences.append(
        "Orchestration keeps the state in one conductor and its services know only their "
        f"own tasks, while choreography's {len(c['structure']['knows_the_definition']) - 1} "
        "services each read the definition and react to one another, so a change to it means "
        "redeploying them all."
    )
    sentences += _recovery_sentences(doc)
    busiest = max(doc["load_average"])
    if busiest > (doc["cpus"] or 1):
        sentences.append(
            f"Other work loaded the machine (load average up to {busiest:g} on {doc['cpus']} "
            "CPUs): the times are noisy; the counts are not."
        )
    if lost:
        sentences.append(f"{lost} workflow(s) were lost: the figures above are suspect.")
    return " ".join(sentences)


def _recovery_sentences(doc: dict[str, Any]) -> list[str]:
    """One sentence per kill: which mode had every caught workflow ended sooner."""
    o, c = doc[Mode.ORCHESTRATION.value], doc[Mode.CHOREOGRAPHY.value]
    out = []
    for ro, rc in zip(o["recovery"], c["recovery"], strict=True):
        if not (ro["killed"] and rc["killed"]):
            out.append(
                f"The kill of {ro['target']} at {ro['at_s']:g} s did not happen in every mode "
                "(its runs ended first): use an earlier time or more runs."
            )
            continue
        quick, slow = (ro, rc) if ro["recovered_s"] <= rc["recovered_s"] else (rc, ro)
        names = {id(ro): "orchestration", id(rc): "choreography"}
        what = ro["target"] if ro["role"] == rc["role"] else f"the {ro['role']} ({rc['role']})"
        out.append(
            f"Killing {what} at {ro['at_s']:g} s: {names[id(quick)]} recovered faster, every "
            f"workflow the outage caught ended {quick['recovered_s']:.1f} s after the kill "
            f"against {slow['recovered_s']:.1f} s "
            f"({quick['caught']} and {slow['caught']} workflows caught; the restarted process "
            f"was ready after {quick['restart_ready_s']} and {slow['restart_ready_s']} s)."
        )
    return out


def print_table(doc: dict[str, Any], console: Console) -> None:
    o, c = doc[Mode.ORCHESTRATION.value], doc[Mode.CHOREOGRAPHY.value]
    table = Table(title=f"podium compare: {doc['definition']} v{doc['version']}")
    table.add_column("")
    table.add_column("orchestration", justify="right")
    table.add_column("choreography", justify="right")

    def row(label: str, get: Any, fmt: str = "{:.2f}") -> None:
        cells = []
        for mode in (o, c):
            value = get(mode)
            cells.append("—" if value is None else fmt.format(value))
        table.add_row(label, *cells)

    for key in ("p50", "p95", "p99", "max"):
        row(f"latency {key} ms", lambda m, k=key: m[k])
    row("workflows/s", lambda m: m["workflows_per_s"], "{:.1f}")
    row("tasks/s", lambda m: m["tasks_per_s"], "{:.1f}")
    row("task overhead ms", lambda m: m["task_overhead_ms"])
    row("messages / workflow", lambda m: total(m["messages_per_workflow"]), "{:.1f}")
    for kind in KINDS[:5]:
        row(f"  {kind}", lambda m, k=kind: m["messages_per_workflow"][k], "{:.1f}")
    row("bytes / workflow", lambda m: total(m["bytes_per_workflow"]), "{:,.0f}")
    row("process CPU ms / workflow", lambda m: m["cpu_ms_per_workflow"]["process"])
    row("broker CPU ms / workflow", lambda m: m["cpu_ms_per_workflow"]["broker"])
    roles = sorted({r for m in (o, c) for r in m["cpu_ms_per_workflow"]["parts"]})
    for role in roles:
        row(
            f"  {role} CPU ms / workflow",
            lambda m, r=role: m["cpu_ms_per_workflow"]["parts"].get(r),
        )
    for outcome in OUTCOMES:
        row(outcome, lambda m, k=outcome: m["outcomes"][k], "{:d}")
    for k, kill in enumerate(doc["kills"]):
        row(f"kill {kill}: recovered s", lambda m, k=k: m["recovery"][k].get("recovered_s"))
        row("  restarted ready s", lambda m, k=k: m["recovery"][k].get("restart_ready_s"))
        row("  workflows caught", lambda m, k=k: m["recovery"][k].get("caught"), "{:d}")
    row("topics", lambda m: m["structure"]["topics"], "{:d}")
    row("consumer groups", lambda m: m["structure"]["consumer_groups"], "{:d}")
    console.print(table)
    for mode in (Mode.ORCHESTRATION.value, Mode.CHOREOGRAPHY.value):
        facts = doc[mode]["structure"]
        console.print(
            f"[bold]{mode}[/]: {facts['coupling_text']}. State: {facts['state']}. "
            f"A definition change redeploys {facts['redeploy_on_change']}."
        )
    console.print(f"\n[bold]{doc['headline']}[/]\n{doc['verdict']}")
