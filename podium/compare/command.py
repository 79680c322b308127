"""`podium compare`: the command's body, from parsed options to the exit code."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from podium.compare.report import write_report
from podium.compare.results import print_table, summarise
from podium.compare.runner import Options, measure
from podium.events import Mode
from podium.runtime.settings import Settings
from podium.services.service import TaskService
from podium.workflow.definition import Definition


class UsageError(ValueError):
    """A bad option: exit 2."""


def read_inputs(
    definition: Definition, input: str | None, inputs: Path | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The runs' inputs, and a note when they were made from the input schema."""
    if input is not None and inputs is not None:
        raise UsageError("give --input or --inputs, not both")
    note = None
    if inputs is not None:
        try:
            lines = [line for line in inputs.read_text().splitlines() if line.strip()]
            values = [orjson.loads(line) for line in lines]
        except (OSError, orjson.JSONDecodeError) as exc:
            raise UsageError(f"--inputs {inputs}: {exc}") from None
        if not values:
            raise UsageError(f"--inputs {inputs}: no input in it")
    elif input is not None:
        try:
            values = [orjson.loads(input)]
        except orjson.JSONDecodeError as exc:
            raise UsageError(f"--input: not JSON: {exc}") from None
    else:
        values = [sample(definition.input_schema or {})]
        if values != [{}]:
            note = (
                f"no --input: using {orjson.dumps(values[0]).decode()}, made from the input schema"
            )
    for k, value in enumerate(values, 1):
        if not isinstance(value, dict):
            raise UsageError(f"input {k}: expected a JSON object")
        problems = definition.input_errors(value)
        if problems:
            raise UsageError(f"input {k} rejected for {definition.name}: {'; '.join(problems)}")
    return values, note


def sample(schema: dict[str, Any]) -> Any:
    """A small value that satisfies a simple JSON schema (defaults and examples first)."""
    if "default" in schema:
        return schema["default"]
    if schema.get("examples"):
        return schema["examples"][0]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: sample(properties.get(name, {})) for name in schema.get("required", [])}
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = max(low, 1) if kind == "integer" else max(low, 1.0)
        return int(value) if kind == "integer" else float(value)
    simple = {"string": "x", "boolean": True, "array": [], "null": None}
    return simple.get(kind, "x")


def compare(
    definition: Definition,
    services: list[TaskService],
    options: Options,
    *,
    bootstrap: str,
    settings: Settings,
    report: Path | None,
    json_path: Path | None,
) -> int:
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description:>13}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=not sys.stderr.isatty(),
    ) as bars:
        ids = {mode: bars.add_task(mode.value, total=options.runs) for mode in Mode}

        def advance(mode: Mode, n: int) -> None:
            bars.advance(ids[mode], n)

        measured = asyncio.run(
            measure(
                definition,
                services,
                options,
                bootstrap=bootstrap,
                settings=settings,
                progress=advance,
            )
        )
    doc = summarise(definition, services, options, measured)
    print_table(doc, Console())
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    if report is not None:
        write_report(doc, report)
        console.print(f"report: {report}")
    lost = sum(doc[m.value]["outcomes"]["lost"] for m in Mode)
    return 0 if lost == 0 else 1
