"""Build a ``Definition`` in Python; it is the same object the YAML loader produces.

    from podium.workflow.builder import Workflow, Task

    order = Workflow("order", on_failure="compensate", timeout="60s").task(
        Task("reserve", "inventory.reserve", input={"sku": "${ workflow.input.sku }"},
             compensate={"type": "inventory.release"}),
    ).task(
        Task("charge", "payments.charge", depends_on=["reserve"]),
    ).build()

``build()`` runs the full validation and raises ``DefinitionError`` listing
every problem, exactly as loading the equivalent file would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from podium.workflow.definition import Compensation, Definition, RetryPolicy
from podium.workflow.loader import parse_definition

__all__ = ["Task", "Workflow"]


@dataclass(frozen=True)
class Task:
    """One task, with the fields of ``TaskSpec``; durations may be ``"5s"`` or seconds."""

    id: str
    type: str
    depends_on: Iterable[str] = ()
    input: Mapping[str, Any] = field(default_factory=dict)
    when: str | None = None
    retry: RetryPolicy | Mapping[str, Any] | None = None
    timeout: float | str | None = None
    compensate: Compensation | Mapping[str, Any] | str | None = None
    skip_if_upstream_skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.depends_on:
            data["depends_on"] = (
                [self.depends_on] if isinstance(self.depends_on, str) else list(self.depends_on)
            )
        if self.input:
            data["input"] = dict(self.input)
        if self.when is not None:
            data["when"] = self.when
        if self.retry is not None:
            data["retry"] = _plain(self.retry)
        if self.timeout is not None:
            data["timeout"] = self.timeout
        if self.compensate is not None:
            data["compensate"] = (
                {"type": self.compensate}
                if isinstance(self.compensate, str)
                else _plain(self.compensate)
            )
        if self.skip_if_upstream_skipped:
            data["skip_if_upstream_skipped"] = True
        return data


def _plain(value: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    return value.model_dump(exclude_defaults=True) if isinstance(value, BaseModel) else dict(value)


class Workflow:
    """A definition under construction: add tasks, then ``build()``."""

    def __init__(
        self,
        name: str,
        version: int = 1,
        *,
        on_failure: str = "fail",
        timeout: float | str | None = None,
        input_schema: Mapping[str, Any] | None = None,
        output: Mapping[str, Any] | None = None,
        tasks: Iterable[Task] = (),
    ) -> None:
        self.name = name
        self.version = version
        self.on_failure = on_failure
        self.timeout = timeout
        self.input_schema = input_schema
        self.output = output
        self.tasks: list[Task] = list(tasks)

    def task(self, task: Task) -> Workflow:
        """Add ``task``; returns the workflow, so calls chain."""
        self.tasks.append(task)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The definition as plain data, as it would be written in YAML."""
        data: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "on_failure": self.on_failure,
        }
        if self.timeout is not None:
            data["timeout"] = self.timeout
        if self.input_schema is not None:
            data["input_schema"] = dict(self.input_schema)
        data["tasks"] = [task.to_dict() for task in self.tasks]
        if self.output is not None:
            data["output"] = dict(self.output)
        return data

    def build(self) -> Definition:
        """Validate and return the ``Definition`` (raises ``DefinitionError`` with every problem)."""
        return parse_definition(self.to_dict(), source=f"<workflow {self.name}>")
