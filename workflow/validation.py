"""Problems found in a definition, and the checks that span several fields.

Field-level checks (types, unknown fields, id syntax, retry ranges) are done
by the pydantic models in ``definition.py``. The checks here look at the
whole graph: duplicate ids, unknown dependencies, cycles, expressions that do
not compile or refer to a task that is not upstream, compensations that can
never run. They work on the *raw* mapping, tolerating malformed parts, so one
pass reports every problem at once even when the models cannot be built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from podium.workflow.durations import format_duration, parse_duration
from podium.workflow.expressions import ExpressionError, compile_expression, iter_expression_sources

Severity = Literal["error", "warning"]
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition file; ``str()`` is the line ``podium validate`` prints.

    ``line`` (1-based) is where in the file the problem is, when known; the
    printed line names the file and the task, e.g.
    ``order.yaml: task 'charge': depends on unknown task 'reserv'``.
    """

    file: str
    task: str | None
    message: str
    severity: Severity = "error"
    line: int | None = None
    loc: Loc = field(default=(), compare=False, repr=False)

    def __str__(self) -> str:
        task = f"task '{self.task}': " if self.task is not None else ""
        level = "warning: " if self.severity == "warning" else ""
        return f"{self.file}: {task}{level}{self.message}"


class DefinitionError(Exception):
    """A definition (or several files of them) has errors; ``problems`` lists all of them."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True)
class Issue:
    """A problem before it is tied to a file: ``loc`` is its path in the raw data."""

    task: str | None
    message: str
    loc: Loc = ()
    severity: Severity = "error"


def _tasks(data: Mapping[str, Any]) -> list[tuple[int, str | None, Mapping[str, Any]]]:
    raw = data.get("tasks")
    if not isinstance(raw, list | tuple):
        return []
    out = []
    for index, item in enumerate(raw):
        if isinstance(item, Mapping):
            task_id = item.get("id")
            out.append((index, task_id if isinstance(task_id, str) else None, item))
    return out


def _deps(item: Mapping[str, Any]) -> list[str]:
    deps = item.get("depends_on", ())
    if isinstance(deps, str):
        return [deps]
    return [dep for dep in deps if isinstance(dep, str)] if isinstance(deps, list | tuple) else []


def graph_issues(data: Mapping[str, Any]) -> list[Issue]:
    """Every cross-field problem of the raw definition ``data``."""
    tasks = _tasks(data)
    issues, seen, graph = _id_issues(tasks)
    for cycle in find_cycles(graph):
        path = " -> ".join([*cycle, cycle[0]])
        where = ("tasks", seen[cycle[0]], "depends_on")
        issues.append(Issue(cycle[0], f"dependency cycle: {path}", where))
    upstream = upstream_sets(graph)
    for index, task_id, item in tasks:
        issues.extend(_retry_issues(task_id, ("tasks", index), item))
        if task_id is not None and seen.get(task_id) == index:
            above = upstream.get(task_id, frozenset())
            issues.extend(_task_expression_issues(task_id, index, item, above, graph))
    issues.extend(_output_issues(data.get("output"), graph))
    if data.get("on_failure", "fail") == "fail":
        message = "has 'compensate' but on_failure is 'fail': the compensation never runs"
        issues.extend(
            Issue(task_id, message, ("tasks", index, "compensate"), "warning")
            for index, task_id, item in tasks
            if item.get("compensate") is not None
        )
    return issues


def _id_issues(
    tasks: list[tuple[int, str | None, Mapping[str, Any]]],
) -> tuple[list[Issue], dict[str, int], dict[str, list[str]]]:
    """Duplicate ids and unknown dependencies; also the first index of each id and the graph."""
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    graph: dict[str, list[str]] = {}
    for index, task_id, item in tasks:
        if task_id is None:
            continue
        if task_id in seen:
            message = f"duplicate task id (tasks #{seen[task_id] + 1} and #{index + 1})"
            issues.append(Issue(task_id, message, ("tasks", index, "id")))
            continue
        seen[task_id] = index
        graph[task_id] = _deps(item)
    for task_id, deps in graph.items():
        where = ("tasks", seen[task_id], "depends_on")
        issues.extend(
            Issue(task_id, f"depends on unknown task '{dep}'", where)
            for dep in deps
            if dep not in graph
        )
    return issues, seen, graph


def _retry_issues(task_id: str | None, loc: Loc, item: Mapping[str, Any]) -> list[Issue]:
    """``max_backoff >= backoff`` (the models check it too, but only when every other retry field is valid)."""
    issues = []
    compensate = item.get("compensate")
    policies = [("retry", item.get("retry"))]
    if isinstance(compensate, Mapping):
        policies.append(("compensate.retry", compensate.get("retry")))
    for name, policy in policies:
        if not isinstance(policy, Mapping):
            continue
        try:
            backoff = parse_duration(policy.get("backoff", 1.0))
            cap = parse_duration(policy.get("max_backoff", 60.0))
        except ValueError:
            continue
        if cap < backoff:
            where = loc + tuple(name.split("."))
            issues.append(Issue(task_id, f"{name}: {backoff_message(backoff, cap)}", where))
    return issues


def backoff_message(backoff: float, cap: float) -> str:
    return f"max_backoff ({format_duration(cap)}) must be >= backoff ({format_duration(backoff)})"


def _task_expression_issues(
    task_id: str,
    index: int,
    item: Mapping[str, Any],
    upstream: frozenset[str],
    graph: Mapping[str, Any],
) -> list[Issue]:
    issues: list[Issue] = []
    loc: Loc = ("tasks", index)
    when = item.get("when")
    if isinstance(when, str):
        issues.extend(
            _check_sources(
                "when", [("", strip_template(when))], task_id, (*loc, "when"), upstream, graph
            )
        )
    compensate = item.get("compensate")
    sections: list[tuple[str, Any, frozenset[str], Loc]] = [
        ("input", item.get("input"), upstream, (*loc, "input"))
    ]
    if isinstance(compensate, Mapping):
        sections.append(
            (
                "compensate.input",
                compensate.get("input"),
                upstream | {task_id},
                (*loc, "compensate", "input"),
            )
        )
    for name, value, allowed, where in sections:
        try:
            sources = list(iter_expression_sources(value))
        except ExpressionError as error:
            issues.append(Issue(task_id, f"{name}: {error}", where))
            continue
        issues.extend(_check_sources(name, sources, task_id, where, allowed, graph))
    return issues


def _check_sources(
    section: str,
    sources: list[tuple[str, str]],
    task_id: str | None,
    loc: Loc,
    allowed: frozenset[str] | None,
    graph: Mapping[str, Any],
) -> list[Issue]:
    issues = []
    for path, source in sources:
        label = f"{section}.{path}" if path else section
        try:
            expression = compile_expression(source)
        except ExpressionError as error:
            issues.append(Issue(task_id, f"{label}: expression {error}", loc))
            continue
        for ref in sorted(expression.tasks):
            if ref not in graph:
                issues.append(
                    Issue(task_id, f"{label}: expression refers to unknown task '{ref}'", loc)
                )
            elif allowed is not None and ref not in allowed:
                issues.append(
                    Issue(
                        task_id,
                        f"{label}: expression refers to task '{ref}', which is not upstream of '{task_id}'",
                        loc,
                    )
                )
    return issues


def _output_issues(output: Any, graph: Mapping[str, Any]) -> list[Issue]:
    try:
        sources = list(iter_expression_sources(output))
    except ExpressionError as error:
        return [Issue(None, f"output: {error}", ("output",))]
    return _check_sources("output", sources, None, ("output",), None, graph)


def strip_template(text: str) -> str:
    """``when`` is a bare CEL expression; a ``${ ... }`` wrapper is tolerated."""
    text = text.strip()
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1].strip()
    return text


def find_cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Each elementary cycle reachable in a DFS, once, as a path of task ids (in definition order)."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    cycles: list[list[str]] = []
    seen_cycles: set[frozenset[str]] = set()
    stack: list[str] = []

    def visit(node: str) -> None:
        color[node] = grey
        stack.append(node)
        for dep in graph[node]:
            if dep not in graph:
                continue
            if color[dep] == grey:
                cycle = stack[stack.index(dep) :]
                # ``depends_on`` points upstream; print the cycle in execution order.
                cycle = [cycle[0], *reversed(cycle[1:])]
                key = frozenset(cycle)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    cycles.append(cycle)
            elif color[dep] == white:
                visit(dep)
        stack.pop()
        color[node] = black

    for node in graph:
        if color[node] == white:
            visit(node)
    return cycles


def upstream_sets(graph: Mapping[str, list[str]]) -> dict[str, frozenset[str]]:
    """Transitive dependencies of each task (cycle-tolerant)."""
    result: dict[str, frozenset[str]] = {}
    for node in graph:
        seen: set[str] = set()
        todo = [dep for dep in graph[node] if dep in graph]
        while todo:
            dep = todo.pop()
            if dep not in seen:
                seen.add(dep)
                todo.extend(d for d in graph[dep] if d in graph)
        seen.discard(node)
        result[node] = frozenset(seen)
    return result
