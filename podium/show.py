"""`podium list`, `status` and `history`: the history store read, as tables or JSON."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from podium.client import result_json
from podium.history import views
from podium.history.database import Database

_STYLE = {
    "Pending": "dim",
    "Running": "cyan",
    "Retrying": "yellow",
    "Compensating": "yellow",
    "Succeeded": "green",
    "Skipped": "magenta",
    "Failed": "red",
    "Compensated": "red",
    "Cancelled": "red",
    "TimedOut": "red",
}


async def workflows(database: Database, **filters: Any) -> list[dict[str, Any]]:
    return [views.summary(row) for row in await database.workflows(**filters)]


async def status(database: Database, workflow_id: str) -> dict[str, Any] | None:
    """An ended workflow's result, exactly as `podium run --json` printed it; else its progress."""
    workflow = await database.workflow(workflow_id)
    if workflow is None:
        return None
    ended = views.ended(workflow)
    if ended is not None:
        return result_json(workflow_id, ended)
    definition = await database.definition(workflow["name"], workflow["version"])
    return views.progress(workflow, await database.attempts(workflow_id), definition)


async def history(database: Database, workflow_id: str) -> list[dict[str, Any]] | None:
    workflow = await database.workflow(workflow_id)
    if workflow is None:
        return None
    definition = await database.definition(workflow["name"], workflow["version"])
    return views.history(workflow, await database.attempts(workflow_id), definition)


# -- tables ---------------------------------------------------------------------------


def print_workflows(items: list[dict[str, Any]], console: Console | None = None) -> None:
    rows = [
        [
            escape(item["workflow_id"]),
            escape(f"{item['workflow']} v{item['version']}"),
            item["mode"],
            _state(item["state"]),
            _time(item["started_at"])[:19],
            _seconds(item["duration_s"]),
        ]
        for item in items
    ]
    columns = ("WORKFLOW ID", "DEFINITION", "MODE", "STATE", "STARTED (UTC)", "TOOK")
    table = _table(columns, rows, None)
    # nothing is cut, even past the terminal's width: ids are what the other commands take
    wide = sum(c.width or 0 for c in table.columns) + 2 * len(columns)
    console = console or Console()
    Console(width=max(console.width, wide), force_terminal=console.is_terminal).print(table)


def print_status(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    console.print(
        f"workflow {escape(result['workflow_id'])}: {_state(result['state'])} — "
        f"{result['workflow']} v{result['version']}, {result['mode']}"
    )
    console.print(f"  started {_time(result['started_at'])}, ended {_time(result['ended_at'])}")
    if result["error"]:
        error = result["error"]
        console.print(f"  error: {escape(error['type'])}: {escape(error['message'])}")
    if result["output"] is not None:
        console.print(f"  output: {escape(str(result['output']))}")
    rows = []
    for task_id, task in result["tasks"].items():
        error = task["error"]
        detail = f"{error['type']}: {error['message']}" if error else _short(task["output"])
        rows.append([escape(task_id), _state(task["state"]), str(task["attempts"]), escape(detail)])
    console.print(_table(("TASK", "STATE", "ATTEMPTS", "OUTPUT OR ERROR"), rows, console.width))


def print_history(
    workflow_id: str, entries: list[dict[str, Any]], console: Console | None = None
) -> None:
    console = console or Console()
    day = entries[0]["time"][:10] if entries else ""
    console.print(f"workflow {escape(workflow_id)} — times of {day} (UTC)")
    rows = []
    for e in entries:
        task = e["task_id"] or "(workflow)"
        if e["compensation"]:
            task += " (undo)"
        error = e["error"]
        if error:
            detail = f"{error['type']}: {error['message']}"
        elif e["reason"]:
            detail = e["reason"]
        else:
            detail = _short(e["input"] if e["to_state"] == "Running" else e["output"])
        rows.append(
            [
                _time(e["time"])[11:],
                escape(task),
                str(e["attempt"] or ""),
                e["from_state"] or "",
                _state(e["to_state"]),
                _seconds(e["duration_s"]),
                escape(detail),
            ]
        )
    columns = ("TIME", "TASK", "TRY", "FROM", "TO", "AFTER", "DETAIL")
    console.print(_table(columns, rows, console.width))


def _table(columns: tuple[str, ...], rows: list[list[str]], width: int | None) -> Table:
    """A plain table in `width` cells: the last column alone gives way (cut with '…')."""
    table = Table(box=None, pad_edge=False)
    widths = [
        max([len(column), *(Text.from_markup(row[i]).cell_len for row in rows)])
        for i, column in enumerate(columns)
    ]
    if width is not None:
        widths[-1] = min(widths[-1], max(12, width - sum(widths[:-1]) - 2 * len(widths)))
    for column, natural in zip(columns, widths, strict=True):
        table.add_column(column, no_wrap=True, overflow="ellipsis", width=natural)
    for row in rows:
        table.add_row(*row)
    return table


def _state(state: str) -> str:
    return f"[{_STYLE.get(state, '')}]{state}[/]"


def _time(iso: str | None) -> str:
    """ISO time without the date and zone noise: 2026-12-01 10:00:00.123"""
    if iso is None:
        return "—"
    return iso.replace("T", " ").split("+")[0][:23]


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _short(value: Any, limit: int = 60) -> str:
    if value is None:
        return ""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
