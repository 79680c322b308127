"""`podium triggers list`: what the definitions' triggers are and when schedules fire."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from podium.workflow.catalog import Catalog
from podium.workflow.triggers import next_ticks, zone


def listing(catalog: Catalog, now: float, count: int = 3) -> dict[str, list[dict[str, Any]]]:
    """Schedules with their next `count` fire times (ISO, in their zone), and bindings."""
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
                bindings.append(
                    {
                        **where,
                        "topic": trigger.event.topic,
                        "filter": trigger.event.filter,
                        "id": trigger.event.id,
                    }
                )
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
    table = Table("workflow", "#", "topic", "filter", "id", title="event bindings")
    for b in entries["bindings"]:
        table.add_row(
            f"{b['workflow']} v{b['version']}",
            str(b["index"]),
            b["topic"],
            b["filter"] or "",
            b["id"] or "",
        )
    console.print(table)
