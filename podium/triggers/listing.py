"""`podium triggers list`: what the definitions' triggers are, when schedules fire and,
read from running gateways' `/metrics`, what became of each binding's records."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime
from typing import Any

from podium.metrics import BINDING_OUTCOMES
from podium.workflow.catalog import Catalog
from podium.workflow.triggers import next_ticks, zone

Counts = dict[str, dict[str, int]]


def binding_counts(urls: list[str], timeout: float = 5.0) -> Counts:
    """Per binding (`<workflow>#<index>`), its records by outcome, summed over the
    gateways whose `/metrics` these URLs are (counted since each process started).
    `OSError` when one cannot be read."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: Counts = {}
    for url in urls:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            if family.name != "podium_binding_records":
                continue
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue  # the _created timestamps
                found = totals.setdefault(
                    sample.labels["binding"], dict.fromkeys(BINDING_OUTCOMES, 0)
                )
                outcome = sample.labels["outcome"]
                found[outcome] = found.get(outcome, 0) + int(sample.value)
    return totals


def listing(
    catalog: Catalog, now: float, count: int = 3, counts: Counts | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Schedules with their next `count` fire times (ISO, in their zone), and bindings
    (with `counts`: each one's `matched`, `filtered` and `dead_lettered`)."""
    schedules: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    for definition in sorted(catalog, key=lambda d: d.key):
        for index, trigger in enumerate(definition.triggers):
            where = {"workflow": definition.name, "version": definition.version, "index": index}
            if trigger.cron is not None:
                ticks = next_ticks(trigger, now, count)
                schedules.append(
                    {
                        **where,
                        "cron": trigger.cron,
                        "timezone": trigger.timezone,
                        "missed": trigger.missed,
                        "next": [
                            datetime.fromtimestamp(t, UTC)
                            .astimezone(zone(trigger.timezone))
                            .isoformat()
                            for t in ticks
                        ],
                    }
                )
            elif trigger.event is not None:
                binding = {
                    **where,
                    "topic": trigger.event.topic,
                    "filter": trigger.event.filter,
                    "id": trigger.event.id,
                }
                if counts is not None:
                    label = f"{definition.name}#{index}"
                    binding["counts"] = counts.get(label, dict.fromkeys(BINDING_OUTCOMES, 0))
                bindings.append(binding)
    return {"schedules": schedules, "bindings": bindings}


def print_listing(entries: dict[str, list[dict[str, Any]]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table("workflow", "#", "cron", "zone", "missed", "next fire times", title="schedules")
    for s in entries["schedules"]:
        table.add_row(
            f"{s['workflow']} v{s['version']}",
            str(s["index"]),
            s["cron"],
            s["timezone"],
            s["missed"],
            "\n".join(s["next"]),
        )
    console.print(table)
    counted = any("counts" in b for b in entries["bindings"])
    columns = ["workflow", "#", "topic", "filter", "id"]
    if counted:
        columns += ["matched", "filtered", "dead-lettered"]
    table = Table(*columns, title="event bindings")
    for b in entries["bindings"]:
        row = [
            f"{b['workflow']} v{b['version']}",
            str(b["index"]),
            b["topic"],
            b["filter"] or "",
            b["id"] or "",
        ]
        if counted:
            row += [str(b["counts"][outcome]) for outcome in BINDING_OUTCOMES]
        table.add_row(*row)
    console.print(table)
