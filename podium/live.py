"""The terminal view of one workflow: task states as they change, then the result."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from podium.workflow.definition import Definition
from podium.workflow.machine import WorkflowState

_STYLE = {
    "Pending": "dim",
    "Running": "cyan",
    "Retrying": "yellow",
    "Succeeded": "green",
    "Skipped": "magenta",
    "Failed": "red",
}


class LiveView:
    def __init__(self, definition: Definition, console: Console | None = None) -> None:
        self.definition = definition
        self.console = console or Console()
        self._state: WorkflowState | None = None
        self._live = Live(self._table(), console=self.console, refresh_per_second=12)

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.update(self._table(), refresh=True)
        self._live.__exit__(*exc)

    def update(self, state: WorkflowState) -> None:
        self._state = state
        self._live.update(self._table())

    def _table(self) -> Table:
        state = self._state
        title = f"{self.definition.name} v{self.definition.version}"
        if state is not None:
            title += f" — {state.workflow_id} — {state.status}"
        table = Table(title=title, title_justify="left")
        for column in ("task", "type", "state", "attempts", "compensation"):
            table.add_column(column)
        for spec in self.definition.tasks:
            task = state.tasks.get(spec.id) if state else None
            status = str(task.status) if task else "Pending"
            compensation = state.compensations.get(spec.id) if state else None
            table.add_row(
                spec.id,
                spec.type,
                f"[{_STYLE.get(status, '')}]{status}[/]",
                str(task.attempts if task else 0),
                str(compensation.status) if compensation else "",
            )
        return table


def print_result(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    console.print()
    state = result["state"]
    colour = "green" if state == "Succeeded" else "red"
    console.print(f"workflow {result['workflow_id']}: [{colour}]{state}[/]")
    if result["error"]:
        console.print(f"  error: {result['error']['type']}: {result['error']['message']}")
    console.print(f"  output: {result['output']}")
