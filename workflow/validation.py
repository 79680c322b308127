"""Problems found in a definition, and the checks that span several fields.

Field-level checks (types, unknown fields, id syntax, retry ranges) are done
by the pydantic models in ``definition.py``. The checks here look at the
whole graph: duplicate ids, unknown dependencies, cycles, expressions that do
not compile or refer to a task that is not upstream, compensations that can
never run. They work on the *raw* mapping, tolerating malformed parts, so one
pass reports every problem at once even when the models cannot be built.

Before any of that, ``size_issues`` bounds what a definition expands to: YAML
anchors and aliases share one value between many places, and a kilobyte of
nested aliases stands for billions of values once walked, rendered or sent (the
wire has no aliases). It counts without expanding, and refuses past
``MAX_VALUES``. Every check here is linear in the definition (the upstream
check too: see ``Ancestry``), so a 10,000-task definition validates in about a
second.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

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


#: the deepest a definition's values may nest: a task input is a few levels deep; the
#: checks, the models and the templates recurse (Python stops at ~1,000 frames)
MAX_DEPTH = 100
#: the most values a definition may hold, each shared (aliased) value counted once per
#: place it appears: a 10,000-task definition holds about 100,000, a 1 KB nine-level
#: YAML alias bomb 43 million
MAX_VALUES = 1_000_000


def size_issues(data: Any, limit: int = MAX_VALUES) -> list[Issue]:
    """A problem when ``data`` expands to more than ``limit`` values, contains itself,
    or nests deeper than ``MAX_DEPTH`` (the checks and the models recurse).

    Counted without expanding (each shared value once, by identity), so a bomb is
    refused in milliseconds. The problem names the outermost place that grows
    through sharing. Mappings, lists and tuples are walked, and models by field.
    """
    sizes, shared, shape = _count(data)
    if shape is not None:
        return [_size_issue(data, *shape)]
    total = sizes.get(id(data), 1)
    if total <= limit:
        return []
    loc: list[str | int] = []
    value = data
    while True:
        heaviest = max(_children(value), key=lambda item: sizes.get(id(item[1]), 1), default=None)
        if heaviest is None or sizes.get(id(heaviest[1]), 1) <= limit:
            break
        if shared.get(id(heaviest[1]), 1) > 1:
            break  # shared: the place that refers to it many times is the one to name
        loc.append(heaviest[0])
        value = heaviest[1]
    size = sizes[id(value)]
    message = (
        f"expands to {size:,} values through YAML aliases (anchors used more than once); "
        f"a definition may hold at most {limit:,}"
    )
    return [_size_issue(data, tuple(loc), message)]


def _children(value: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(value, Mapping):
        return iter(value.items())
    if isinstance(value, list | tuple):
        return enumerate(value)
    if isinstance(value, BaseModel):
        return iter(vars(value).items())
    return iter(())


def _count(root: Any) -> tuple[dict[int, int], dict[int, int], tuple[Loc, str] | None]:
    """Expanded size of every container under ``root`` (by id), how many places refer to
    each, and where its shape is refused and why: a container found inside itself, or
    nested past ``MAX_DEPTH`` (None: neither)."""
    sizes: dict[int, int] = {}
    shared: dict[int, int] = {id(root): 1}
    containers = (Mapping, list, tuple, BaseModel)
    if not isinstance(root, containers):
        return sizes, shared, None
    # (id, key it sits under, its remaining children, its size so far)
    todo: list[tuple[int, Any, Iterator[tuple[Any, Any]], list[int]]] = [
        (id(root), None, _children(root), [1])
    ]
    active = {id(root)}
    while todo:
        _, _, items, size = todo[-1]
        for key, child in items:
            if not isinstance(child, containers):
                size[0] += 1
                continue
            ident = id(child)
            shared[ident] = shared.get(ident, 0) + 1
            if ident in sizes:
                size[0] += sizes[ident]
            elif ident in active or len(todo) >= MAX_DEPTH:
                loc = (*(entry[1] for entry in todo[1:]), key)
                if ident in active:
                    why = "contains itself (a YAML alias inside its own anchor)"
                    return sizes, shared, (loc, why)
                # named where it starts: the field of the task (or of the definition)
                top = loc[:4] if loc[:1] == ("tasks",) else loc[:1]
                return sizes, shared, (top, f"nests more than {MAX_DEPTH} levels deep")
            else:
                active.add(ident)
                todo.append((ident, key, _children(child), [1]))
                break
        else:
            ident, _, _, done = todo.pop()
            active.discard(ident)
            sizes[ident] = done[0]
            if todo:
                todo[-1][3][0] += done[0]
    return sizes, shared, None


def _size_issue(data: Any, loc: Loc, message: str) -> Issue:
    task = None
    path = loc
    tasks = data.get("tasks") if isinstance(data, Mapping) else getattr(data, "tasks", None)
    if len(loc) >= 2 and loc[0] == "tasks" and isinstance(loc[1], int) and tasks is not None:
        item = tasks[loc[1]]
        raw_id = item.get("id") if isinstance(item, Mapping) else getattr(item, "id", None)
        task = raw_id if isinstance(raw_id, str) else f"#{loc[1] + 1}"
        path = loc[2:]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    return Issue(task, f"{where.lstrip('.')}: {message}" if where else message, loc)


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
    # expression references to tasks that are not direct dependencies are answered
    # together once every one is known (``Ancestry``): ``_Upstream`` holds the place
    found: list[Issue | _Upstream] = []
    for index, task_id, item in tasks:
        found.extend(_retry_issues(task_id, ("tasks", index), item))
        if task_id is not None and seen.get(task_id) == index:
            found.extend(_task_expression_issues(task_id, index, item, graph))
    found.extend(_output_issues(data.get("output"), graph))
    ancestry = Ancestry(graph, {q.ref for q in found if isinstance(q, _Upstream)})
    for entry in found:
        if isinstance(entry, Issue):
            issues.append(entry)
        elif not ancestry.is_upstream(entry.task, entry.ref):
            issues.append(entry.issue())
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


@dataclass(frozen=True, slots=True)
class _Upstream:
    """A question for ``Ancestry``: is ``ref`` upstream of ``task``? If not, an issue."""

    task: str
    ref: str
    label: str
    loc: Loc

    def issue(self) -> Issue:
        message = f"{self.label}: expression refers to task '{self.ref}', which is not upstream of '{self.task}'"
        return Issue(self.task, message, self.loc)


def _task_expression_issues(
    task_id: str, index: int, item: Mapping[str, Any], graph: Mapping[str, Any]
) -> list[Issue | _Upstream]:
    found: list[Issue | _Upstream] = []
    loc: Loc = ("tasks", index)
    when = item.get("when")
    if isinstance(when, str):
        sources = [("", strip_template(when))]
        found.extend(_check_sources("when", sources, task_id, (*loc, "when"), graph))
    compensate = item.get("compensate")
    sections: list[tuple[str, Any, bool, Loc]] = [
        ("input", item.get("input"), False, (*loc, "input"))
    ]
    if isinstance(compensate, Mapping):
        where = (*loc, "compensate", "input")
        sections.append(("compensate.input", compensate.get("input"), True, where))
    for name, value, own, where in sections:
        try:
            sources = list(iter_expression_sources(value))
        except ExpressionError as error:
            found.append(Issue(task_id, f"{name}: {error}", where))
            continue
        found.extend(_check_sources(name, sources, task_id, where, graph, own=own))
    return found


def _check_sources(
    section: str,
    sources: list[tuple[str, str]],
    task_id: str | None,
    loc: Loc,
    graph: Mapping[str, Any],
    *,
    own: bool = False,
) -> list[Issue | _Upstream]:
    """Compile each source; a reference to a task is checked to exist, and, within a
    task (``task_id``), to be upstream of it (or the task itself, when ``own``)."""
    found: list[Issue | _Upstream] = []
    for path, source in sources:
        label = f"{section}.{path}" if path else section
        try:
            expression = compile_expression(source)
        except ExpressionError as error:
            found.append(Issue(task_id, f"{label}: expression {error}", loc))
            continue
        for ref in sorted(expression.tasks):
            if ref not in graph:
                message = f"{label}: expression refers to unknown task '{ref}'"
                found.append(Issue(task_id, message, loc))
                continue
            if task_id is None or ref in graph[task_id] or (own and ref == task_id):
                continue  # a dependency is upstream; compensate.input may use its task's output
            found.append(_Upstream(task_id, ref, label, loc))
    return found


def _output_issues(output: Any, graph: Mapping[str, Any]) -> list[Issue | _Upstream]:
    try:
        sources = list(iter_expression_sources(output))
    except ExpressionError as error:
        return [Issue(None, f"output: {error}", ("output",))]
    return _check_sources("output", sources, None, ("output",), graph)


def strip_template(text: str) -> str:
    """``when`` is a bare CEL expression; a ``${ ... }`` wrapper is tolerated."""
    text = text.strip()
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1].strip()
    return text


def find_cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Each elementary cycle reachable in a DFS, once, as a path of task ids (in definition order).

    Iterative: a chain of thousands of tasks listed downstream first is as deep as it is long.
    """
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    cycles: list[list[str]] = []
    seen_cycles: set[frozenset[str]] = set()
    for root in graph:
        if color[root] != white:
            continue
        color[root] = grey
        path, position = [root], {root: 0}
        todo = [iter(graph[root])]
        while todo:
            for dep in todo[-1]:
                if dep not in graph:
                    continue
                if color[dep] == grey:
                    cycle = path[position[dep] :]
                    # ``depends_on`` points upstream; print the cycle in execution order.
                    cycle = [cycle[0], *reversed(cycle[1:])]
                    key = frozenset(cycle)
                    if key not in seen_cycles:
                        seen_cycles.add(key)
                        cycles.append(cycle)
                elif color[dep] == white:
                    color[dep] = grey
                    position[dep] = len(path)
                    path.append(dep)
                    todo.append(iter(graph[dep]))
                    break
            else:
                todo.pop()
                node = path.pop()
                del position[node]
                color[node] = black
    return cycles


class Ancestry:
    """Whether one task is (transitively) upstream of another, for the tasks asked about.

    Every task's full upstream set costs O(n²) for a chain of n tasks (5,000 tasks:
    12.5 M set entries, 0.7 GB, 10 s). Only the tasks an expression names beyond
    its own dependencies (``targets``) are ever asked about, so each task gets a
    bitset over those alone, OR-ed once along the graph's strongly connected
    components in dependency order: linear when a definition names few such tasks,
    as definitions do. Cycles are tolerated (a cycle's members are upstream of one
    another); dependencies on unknown tasks are ignored.
    """

    def __init__(self, graph: Mapping[str, list[str]], targets: Iterable[str]) -> None:
        self._graph = graph
        self._bits = {task: 1 << n for n, task in enumerate(sorted(set(targets) & graph.keys()))}
        self._upstream: dict[str, int] = {}
        if self._bits:
            for component in strongly_connected(graph):
                self._mark(component)

    def _mark(self, component: list[str]) -> None:
        bits, upstream = self._bits, self._upstream
        members = set(component)
        mask = 0
        for task in component:
            for dep in self._graph[task]:
                if dep in members:
                    mask |= bits.get(dep, 0)
                elif dep in upstream:
                    mask |= upstream[dep] | bits.get(dep, 0)
        for task in component:
            upstream[task] = mask

    def is_upstream(self, task: str, ref: str) -> bool:
        """Whether ``ref`` is upstream of ``task`` (never itself: it was a cycle)."""
        if ref == task:
            return False
        if ref in self._graph.get(task, ()):
            return True
        bit = self._bits.get(ref)
        return bit is not None and bool(self._upstream.get(task, 0) & bit)


def strongly_connected(graph: Mapping[str, list[str]]) -> Iterator[list[str]]:
    """The strongly connected components, each after the ones it depends on (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def enter(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)

    for root in graph:
        if root in index:
            continue
        enter(root)
        todo = [(root, iter(graph[root]))]
        while todo:
            node, deps = todo[-1]
            for dep in deps:
                if dep not in graph:
                    continue
                if dep not in index:
                    enter(dep)
                    todo.append((dep, iter(graph[dep])))
                    break
                if dep in on_stack:
                    low[node] = min(low[node], index[dep])
            else:
                todo.pop()
                if todo:
                    parent = todo[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while not component or component[-1] != node:
                        component.append(stack.pop())
                        on_stack.discard(component[-1])
                    yield component
