"""The comparison as one self-contained HTML file: the verdict, then Plotly charts (its
JavaScript embedded once, so the file opens without a network) and the structural facts."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from podium.compare.results import KINDS
from podium.events import Mode

COLOURS = {Mode.ORCHESTRATION.value: "#1f77b4", Mode.CHOREOGRAPHY.value: "#ff7f0e"}
MODES = (Mode.ORCHESTRATION.value, Mode.CHOREOGRAPHY.value)


def write_report(doc: dict[str, Any], path: Path) -> None:
    figures = [_cdf(doc), _throughput(doc), _messages(doc)]
    if doc["kills"]:
        figures.append(_recovery(doc))
    charts = []
    for k, figure in enumerate(figures):
        charts.append(
            pio.to_html(
                figure,
                full_html=False,
                include_plotlyjs=k == 0,  # the library once, inline
                div_id=f"chart-{k}",
                config={"displaylogo": False, "responsive": True},
            )
        )
    path.write_text(_page(doc, charts), encoding="utf-8")


def _cdf(doc: dict[str, Any]) -> go.Figure:
    figure = go.Figure()
    for mode in MODES:
        values = sorted(v for v in doc[mode]["latencies_ms"])
        n = len(values)
        figure.add_trace(
            go.Scatter(
                x=values,
                y=[(i + 1) / n for i in range(n)],
                mode="lines",
                name=mode,
                line={"shape": "hv", "color": COLOURS[mode]},
            )
        )
    figure.update_layout(
        title="Latency CDF (end to end, per workflow)",
        xaxis_title="latency, ms (log scale: the body and the tail both show)",
        xaxis_type="log",
        yaxis_title="fraction of workflows",
        yaxis={"range": [0, 1.02]},
    )
    return figure


def _throughput(doc: dict[str, Any]) -> go.Figure:
    figure = go.Figure()
    for mode in MODES:
        points = doc[mode]["throughput_timeline"]
        figure.add_trace(
            go.Scatter(
                x=[p["t"] for p in points],
                y=[p["workflows_per_s"] for p in points],
                mode="lines+markers",
                name=mode,
                line={"color": COLOURS[mode]},
            )
        )
    figure.update_layout(
        title="Throughput over the mode's measured time (its blocks back to back)",
        xaxis_title="seconds",
        yaxis_title="workflows ended per second",
    )
    return figure


def _messages(doc: dict[str, Any]) -> go.Figure:
    figure = go.Figure()
    for kind in KINDS:
        figure.add_trace(
            go.Bar(
                x=list(MODES),
                y=[doc[m]["messages_per_workflow"][kind] for m in MODES],
                name=kind,
                text=[f"{doc[m]['bytes_per_workflow'][kind]:,.0f} B" for m in MODES],
            )
        )
    figure.update_layout(
        barmode="stack",
        title="Kafka messages per workflow, by kind (bytes in the labels)",
        yaxis_title="messages per workflow",
    )
    return figure


def _recovery(doc: dict[str, Any]) -> go.Figure:
    """Each workflow's latency at the moment it ended, the kills and restarts marked."""
    figure = go.Figure()
    for mode in MODES:
        points = doc[mode]["recovery_timeline"]
        figure.add_trace(
            go.Scatter(
                x=[p["t"] for p in points],
                y=[p["latency_ms"] for p in points],
                mode="markers",
                marker={"size": 4, "color": COLOURS[mode]},
                name=mode,
            )
        )
        for r in doc[mode]["recovery"]:
            if not r["killed"]:
                continue
            figure.add_vline(
                x=r["killed_at_s"],
                line={"color": COLOURS[mode], "dash": "dash"},
                annotation_text=f"{r['role']} killed",
            )
            if r["restart_ready_s"] is not None:
                figure.add_vline(
                    x=r["killed_at_s"] + r["restart_ready_s"],
                    line={"color": COLOURS[mode], "dash": "dot"},
                    annotation_text="restarted, ready",
                    annotation_position="bottom right",
                )
    figure.update_layout(
        title="Recovery timeline: each workflow's latency when it ended (kill dashed, ready dotted)",
        xaxis_title="seconds into the mode's measured runs",
        yaxis_title="latency, ms",
    )
    return figure


def _rows(doc: dict[str, Any]) -> str:
    o, c = doc[MODES[0]], doc[MODES[1]]
    rows: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("latency p50 / p95 / p99 / max, ms", lambda m: f"{m['p50']} / {m['p95']} / {m['p99']} / {m['max']}"),
        ("workflows/s, tasks/s", lambda m: f"{m['workflows_per_s']}, {m['tasks_per_s']}"),
        ("task overhead, ms (latency - handler time, per attempt)", lambda m: m["task_overhead_ms"]),
        ("process / broker CPU, ms per workflow", lambda m: f"{m['cpu_ms_per_workflow']['process']} / {m['cpu_ms_per_workflow']['broker'] or 'not measured'}"),
        ("CPU of each part's own process, ms per workflow", lambda m: ", ".join(f"{r} {v}" for r, v in m["cpu_ms_per_workflow"]["parts"].items()) or "none: all in one process"),
        ("outcomes", lambda m: ", ".join(f"{k} {v}" for k, v in m["outcomes"].items() if v)),
        *(
            (f"kill {kill}: every caught workflow ended after, s (restart ready after, s; caught)",
             lambda m, k=k: _recovered(m["recovery"][k]))
            for k, kill in enumerate(doc["kills"])
        ),
        ("topics, consumer groups", lambda m: f"{m['structure']['topics']}, {m['structure']['consumer_groups']}"),
        ("who must know whom", lambda m: m["structure"]["coupling_text"]),
        ("where workflow state lives", lambda m: m["structure"]["state"]),
        ("a definition change redeploys", lambda m: m["structure"]["redeploy_on_change"]),
    ]  # fmt: skip
    return "\n".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(str(get(o)))}</td>"
        f"<td>{html.escape(str(get(c)))}</td></tr>"
        for label, get in rows
    )


def _recovered(r: dict[str, Any]) -> str:
    if not r["killed"]:
        return f"not killed: {r['note']}"
    return f"{r['recovered_s']} ({r['restart_ready_s']}; {r['caught']})"


def _scorecard(doc: dict[str, Any]) -> str:
    """Criterion by criterion, the better figure marked: the answer at a glance."""

    def cell(row: dict[str, Any], mode: str) -> str:
        value = row[mode]
        text = "—" if value is None else f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"
        won = row["better"] == mode
        mark = f' <span class="by">{row["by"]:g}x better</span>' if won else ""
        return f'<td class="{"won" if won else ""}">{html.escape(text)}{mark}</td>'

    rows = []
    for row in doc["scorecard"]:
        unit = f" ({row['unit']})" if row["unit"] else ""
        lower = "lower" if row["lower_is_better"] else "higher"
        rows.append(
            f"<tr><th>{html.escape(row['name'] + unit)} <small>{lower} is better</small></th>"
            f"{cell(row, MODES[0])}{cell(row, MODES[1])}</tr>"
        )
    return "\n".join(rows)


def _page(doc: dict[str, Any], charts: list[str]) -> str:
    title = f"podium compare: {doc['definition']} v{doc['version']}"
    setup = (
        f"{doc['runs']} runs a mode after {doc['warmup']} warm-up, concurrency "
        f"{doc['concurrency']}, fail rate {doc['fail_rate']}, on {doc['broker']}; "
        f"{doc['schedule']}; "
        f"{doc['elapsed_s']} s in all; load average {doc['load_average'][0]:g} at the start, "
        f"{doc['load_average'][1]:g} at the end, {doc['cpus']} CPUs. Percentiles: {doc['percentiles']}. CPU: {doc['cpu_note']}."
    )
    body = "\n".join(f'<section class="chart">{chart}</section>' for chart in charts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
.verdict {{ font-size: 1.15rem; background: #f3f6fa; border-left: 4px solid #1f77b4;
  padding: .8rem 1rem; }}
table {{ border-collapse: collapse; width: 100%; margin: 1rem 0; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }}
.setup {{ color: #555; font-size: .9rem; }}
h2.headline {{ font-size: 1.3rem; line-height: 1.35; margin: .4rem 0 1rem; }}
table.score td.won {{ background: #e3f4e1; font-weight: 600; }}
table.score .by, table.score small {{ color: #555; font-weight: normal; font-size: .8rem; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<h2 class="headline" id="headline">{html.escape(doc["headline"])}</h2>
<table class="score" id="scorecard"><tr><th></th><th>orchestration</th><th>choreography</th></tr>
{_scorecard(doc)}
</table>
<p class="verdict" id="verdict">{html.escape(doc["verdict"])}</p>
<p class="setup">{html.escape(setup)}</p>
<h3>All figures</h3>
<table><tr><th></th><th>orchestration</th><th>choreography</th></tr>
{_rows(doc)}
</table>
{body}
</body></html>
"""
