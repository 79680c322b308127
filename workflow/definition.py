"""The workflow definition model (pydantic v2, frozen) and its compiled plan.

A ``Definition`` is what the loader and the Python builder produce. Building one
validates every field; the graph checks of ``validation.py`` run as well, so a
``Definition`` that exists is valid (acyclic, known dependencies, expressions
that compile and refer only to upstream tasks). Its ``plan`` — topological
order, dependents, compiled expressions — is built once, on first use, and
cached on the instance.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jsonschema
import jsonschema_rs
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from podium.events import topics
from podium.workflow.durations import parse_duration
from podium.workflow.expressions import Expression, Template, compile_expression, compile_template
from podium.workflow.messages import Step
from podium.workflow.triggers import WAIT_INPUT, WAIT_TYPE, OnComplete, Trigger, WaitFor
from podium.workflow.validation import (
    Issue,
    backoff_message,
    graph_issues,
    size_issues,
    strip_template,
)

__all__ = [
    "SKIP_GRAPH_CHECKS",
    "Compensation",
    "CompiledTask",
    "Definition",
    "Plan",
    "RetryPolicy",
    "TaskSpec",
]

TASK_ID = re.compile(r"[a-z_][a-z0-9_]*")
WORKFLOW_NAME = re.compile(r"[a-z][a-z0-9_.-]*")

# Validation context flag: the loader runs the graph checks itself (to report them with the field errors).
SKIP_GRAPH_CHECKS = "podium.skip_graph_checks"


def _check_task_id(value: str) -> str:
    if not TASK_ID.fullmatch(value):
        raise ValueError(
            f"invalid task id '{value}': use lowercase letters, digits and '_' ([a-z_][a-z0-9_]*)"
        )
    return value


def _check_name(value: str) -> str:
    if not WORKFLOW_NAME.fullmatch(value):
        raise ValueError(f"invalid workflow name '{value}': use [a-z][a-z0-9_.-]*")
    return value


def _check_type(value: str) -> str:
    problem = topics.name_problem(value, "task type")
    if problem is not None:
        raise ValueError(problem)
    return value


def _as_tuple(value: Any) -> Any:
    if isinstance(value, str):
        return (value,)
    return tuple(value) if isinstance(value, list) else value


Duration = Annotated[float, BeforeValidator(parse_duration)]
TaskId = Annotated[str, AfterValidator(_check_task_id)]
TaskType = Annotated[str, AfterValidator(_check_type)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RetryPolicy(_Model):
    """Attempts and exponential backoff: delay(n) = min(backoff * multiplier**(n-1) * jitter, max_backoff)."""

    max_attempts: int = Field(1, ge=1)
    backoff: Duration = Field(1.0, ge=0)
    multiplier: float = Field(2.0, ge=1)
    max_backoff: Duration = Field(60.0, ge=0)
    jitter: float = Field(0.0, ge=0, le=1)

    def delay(self, attempt: int, salt: str) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one.

        Exponential, jittered by +/- ``jitter`` (a fraction), capped at
        ``max_backoff``. The jitter is drawn from ``salt`` (the workflow seed and
        task id), so the same history always gives the same delays.
        """
        try:
            delay = self.backoff * self.multiplier ** (attempt - 1)
        except OverflowError:
            delay = self.max_backoff
        if self.jitter:
            digest = hashlib.blake2b(f"{salt}:{attempt}".encode(), digest_size=8).digest()
            unit = int.from_bytes(digest, "big") / 2.0**64  # in [0, 1)
            delay *= 1.0 + self.jitter * (2.0 * unit - 1.0)
        return max(0.0, min(delay, self.max_backoff))

    @model_validator(mode="after")
    def _cap_not_below_backoff(self) -> RetryPolicy:
        if self.max_backoff < self.backoff:
            raise ValueError(backoff_message(self.backoff, self.max_backoff))
        return self


class Compensation(_Model):
    """The task type (and input) that undoes a task; its input may use the task's own output."""

    type: TaskType
    input: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout: Duration | None = Field(None, gt=0)


class TaskSpec(_Model):
    id: TaskId
    type: TaskType
    depends_on: Annotated[tuple[TaskId, ...], BeforeValidator(_as_tuple)] = ()
    when: str | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout: Duration | None = Field(None, gt=0)
    compensate: Compensation | None = None
    skip_if_upstream_skipped: bool = False
    #: done by the outside world (the trigger gateway), not a service: no `type`
    wait_for: WaitFor | None = Field(None, exclude_if=lambda value: value is None)

    @model_validator(mode="before")
    @classmethod
    def _wait_type(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("wait_for") is not None and "type" not in data:
            return {**data, "type": WAIT_TYPE}
        return data

    @model_validator(mode="after")
    def _wait_has_no_type(self) -> TaskSpec:
        if self.wait_for is not None and self.type != WAIT_TYPE:
            raise ValueError("a wait_for task has no type: the trigger gateway completes it")
        if self.wait_for is None and self.type == WAIT_TYPE:
            raise ValueError(f"type {WAIT_TYPE!r} is for wait_for tasks")
        if self.wait_for is not None and self.input:
            raise ValueError(
                "a wait_for task takes no input: its attempt's input is the workflow's input "
                "(what its match and output see as workflow.input)"
            )
        return self


@dataclass(frozen=True, slots=True)
class CompiledTask:
    spec: TaskSpec
    index: int  # position in topological order
    when: Expression | None
    input: Template
    compensate_input: Template | None
    refs: frozenset[str]  # tasks named by ``when`` / ``input``
    observes: tuple[
        str, ...
    ]  # depends_on + refs: outcomes the task needs before it can be evaluated
    compensate_refs: frozenset[str]
    dependents: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    order: tuple[str, ...]
    tasks: Mapping[str, CompiledTask]
    roots: tuple[str, ...]
    sinks: tuple[str, ...]
    output: Template | None


class Definition(_Model):
    # an error's text leaves the input out: printing a definition that shares values
    # through YAML aliases would expand them (the problems name the task and field)
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: Annotated[str, AfterValidator(_check_name)]
    version: int = Field(1, ge=1)
    on_failure: Literal["fail", "compensate"] = "fail"
    timeout: Duration | None = Field(None, gt=0)
    input_schema: dict[str, Any] | None = None
    tasks: tuple[TaskSpec, ...] = Field(min_length=1)
    output: dict[str, Any] | None = None
    #: schedules and event bindings that start it (the trigger gateway)
    triggers: tuple[Trigger, ...] = Field((), exclude_if=lambda value: not value)
    #: what happens once per end: start another workflow, or publish the result
    on_complete: tuple[OnComplete, ...] = Field((), exclude_if=lambda value: not value)

    _plan: Plan | None = PrivateAttr(default=None)
    _validator: _InputValidator | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _graph(self, info: ValidationInfo) -> Definition:
        if info.context and info.context.get(SKIP_GRAPH_CHECKS):
            return self
        errors = size_issues(self)  # before model_dump expands what aliases share
        if not errors:
            errors = [i for i in graph_issues(self.model_dump()) if i.severity == "error"]
            if self.input_schema is not None:
                errors.extend(schema_issues(self.input_schema))
        if errors:
            raise ValueError(
                "; ".join(f"task '{i.task}': {i.message}" if i.task else i.message for i in errors)
            )
        return self

    @field_validator("on_complete")
    @classmethod
    def _end_refs(cls, value: tuple[OnComplete, ...], info: ValidationInfo) -> Any:
        tasks = info.data.get("tasks")
        if tasks is None:
            return value  # the tasks have problems of their own
        known = {task.id for task in tasks}
        for index, entry in enumerate(value):
            unknown = sorted(entry.refs() - known)
            if unknown:
                names = ", ".join(repr(name) for name in unknown)
                raise ValueError(f"on_complete[{index}]: expression refers to unknown task {names}")
        return value

    @property
    def waits(self) -> bool:
        """Whether a task waits for the outside world (the trigger gateway completes it)."""
        return any(task.wait_for is not None for task in self.tasks)

    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> Definition:
        """A copy; the cached plan is dropped when fields change (``update`` is not validated)."""
        copy = super().model_copy(update=update, deep=deep)
        if update:
            object.__setattr__(copy, "__pydantic_private__", {"_plan": None, "_validator": None})
        return copy

    def __eq__(self, other: object) -> bool:  # the cached plan is not part of the value
        return type(other) is type(self) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    @property
    def key(self) -> tuple[str, int]:
        return (self.name, self.version)

    def task(self, task_id: str) -> TaskSpec:
        """The task named ``task_id`` (``KeyError`` if there is none)."""
        return self.plan.tasks[task_id].spec

    def spec_of(self, step: Step) -> TaskSpec | Compensation:
        """What runs for a step: its type, retry policy and timeout (``KeyError`` if unknown)."""
        spec = self.plan.tasks[step.task_id].spec
        if not step.compensation:
            return spec
        if spec.compensate is None:
            raise KeyError(f"task '{step.task_id}' has no compensation")
        return spec.compensate

    @property
    def order(self) -> tuple[str, ...]:
        """Task ids in a topological order (dependencies first, definition order among peers)."""
        return self.plan.order

    @property
    def plan(self) -> Plan:
        private = self.__pydantic_private__
        assert private is not None
        plan: Plan | None = private["_plan"]
        if plan is None:
            plan = private["_plan"] = _compile(self)
        return plan

    def input_errors(self, value: Any) -> list[str]:
        """Messages for each way ``value`` violates ``input_schema`` (empty: valid)."""
        if self.input_schema is None:
            return [] if isinstance(value, dict) else ["workflow input must be an object"]
        if self._validator is None:
            self._validator = _InputValidator(self.input_schema)
        return self._validator.errors(value)


#: a schema that refers elsewhere: checked by jsonschema alone, which resolves no remote one
_REFERENCE = re.compile(r'"\$(ref|dynamicRef|recursiveRef)"')


class _InputValidator:
    """An input schema's validator: jsonschema_rs says whether an input is valid, ~40x
    faster than jsonschema (every trigger is checked by the conductor, or by the tracker
    and each choreography participant: 12 % of choreography's CPU went there); a refused
    input is checked again by jsonschema, which words the messages and has the last word."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.full = jsonschema.validators.validator_for(schema)(schema)
        self.fast: Any = None
        if not _REFERENCE.search(json.dumps(schema, default=str)):  # it would fetch a remote $ref
            try:
                self.fast = jsonschema_rs.validator_for(schema)
            except Exception:  # a schema it cannot compile: jsonschema alone
                self.fast = None

    def errors(self, value: Any) -> list[str]:
        if self.fast is not None:
            try:
                if self.fast.is_valid(value):
                    return []
            except Exception:  # a value it cannot read: jsonschema decides
                pass
        errors = sorted(self.full.iter_errors(value), key=lambda e: list(e.absolute_path))
        return [
            f"{'.'.join(str(p) for p in e.absolute_path) or '<input>'}: {e.message}" for e in errors
        ]


def schema_issues(schema: Any) -> list[Issue]:
    """A problem if ``schema`` is not itself a valid JSON Schema."""
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as error:
        return [
            Issue(
                None, f"input_schema is not a valid JSON Schema: {error.message}", ("input_schema",)
            )
        ]
    return []


def _topological(tasks: tuple[TaskSpec, ...]) -> tuple[str, ...]:
    position = {task.id: i for i, task in enumerate(tasks)}
    remaining = {task.id: len(task.depends_on) for task in tasks}
    dependents: dict[str, list[str]] = {task.id: [] for task in tasks}
    for task in tasks:
        for dep in task.depends_on:
            dependents[dep].append(task.id)
    ready = [position[tid] for tid, n in remaining.items() if n == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        tid = tasks[heapq.heappop(ready)].id
        order.append(tid)
        for child in dependents[tid]:
            remaining[child] -= 1
            if remaining[child] == 0:
                heapq.heappush(ready, position[child])
    if len(order) != len(tasks):
        raise ValueError("definition has a dependency cycle")
    return tuple(order)


def _compile(definition: Definition) -> Plan:
    order = _topological(definition.tasks)
    index = {tid: i for i, tid in enumerate(order)}
    graph = {task.id: list(task.depends_on) for task in definition.tasks}
    dependents: dict[str, list[str]] = {task.id: [] for task in definition.tasks}
    for task in definition.tasks:
        for dep in task.depends_on:
            dependents[dep].append(task.id)
    compiled: dict[str, CompiledTask] = {}
    for task in sorted(definition.tasks, key=lambda t: index[t.id]):
        when = compile_expression(strip_template(task.when)) if task.when is not None else None
        # a wait's attempt carries the workflow's input: the gateway's match sees it
        template = compile_template(WAIT_INPUT if task.wait_for is not None else task.input)
        refs = template.tasks | (when.tasks if when else frozenset())
        compensate = compile_template(task.compensate.input) if task.compensate else None
        observes = tuple(dict.fromkeys([*task.depends_on, *sorted(refs - set(task.depends_on))]))
        compiled[task.id] = CompiledTask(
            spec=task,
            index=index[task.id],
            when=when,
            input=template,
            compensate_input=compensate,
            refs=refs,
            observes=observes,
            compensate_refs=compensate.tasks if compensate else frozenset(),
            dependents=tuple(sorted(dependents[task.id], key=index.__getitem__)),
        )
    return Plan(
        order=order,
        tasks=compiled,
        roots=tuple(tid for tid in order if not graph[tid]),
        sinks=tuple(tid for tid in order if not dependents[tid]),
        output=compile_template(definition.output) if definition.output is not None else None,
    )
