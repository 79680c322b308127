"""Loading definitions from YAML/JSON files, reporting every problem at once.

``parse_definition`` runs the pydantic field checks and the graph checks of
``validation.py`` side by side and raises one ``DefinitionError`` carrying all
the ``Problem``s (each naming the file, the task and, where known, the line).
A definition that expands past ``MAX_VALUES`` through YAML aliases is refused
with that one problem, before anything walks it (``validation.size_issues``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from podium.workflow.definition import SKIP_GRAPH_CHECKS, Definition, schema_issues
from podium.workflow.validation import (
    DefinitionError,
    Issue,
    Loc,
    Problem,
    graph_issues,
    size_issues,
)

__all__ = [
    "SUFFIXES",
    "DefinitionError",
    "Problem",
    "check_definition",
    "load_definition",
    "load_definitions",
    "parse_definition",
    "summary",
    "validate_files",
]

SUFFIXES = (".yaml", ".yml", ".json")

#: libyaml's parser where PyYAML was built with it (it is, in the wheels): ~4x faster
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_definition(data: Any, source: str = "<memory>") -> Definition:
    """Build a ``Definition`` from plain data; raise ``DefinitionError`` listing every error."""
    definition, problems = check_definition(data, source)
    if definition is None:
        raise DefinitionError(problems)
    return definition


def check_definition(
    data: Any, source: str = "<memory>", node: yaml.Node | None = None
) -> tuple[Definition | None, list[Problem]]:
    """All problems of ``data`` (errors and warnings), and the definition when there is no error."""
    if not isinstance(data, Mapping):
        return None, [
            Problem(
                source,
                None,
                f"expected a mapping with name, version and tasks, got {type(data).__name__}",
            )
        ]
    # everything below walks the data: one that expands past the bound goes no further
    issues: list[Issue] = size_issues(data)
    definition = None
    if not issues:
        try:
            definition = Definition.model_validate(data, context={SKIP_GRAPH_CHECKS: True})
        except ValidationError as error:
            issues.extend(_field_issues(error, data))
        issues.extend(graph_issues(data))
        if isinstance(data.get("input_schema"), Mapping):
            issues.extend(schema_issues(data["input_schema"]))
    problems = [
        Problem(source, i.task, i.message, i.severity, _line(node, i.loc), i.loc)
        for i in _unique(issues)
    ]
    problems.sort(key=lambda p: (p.severity != "error", p.line is None, p.line or 0))
    if any(problem.severity == "error" for problem in problems):
        return None, problems
    return definition, problems


def _unique(issues: Iterable[Issue]) -> list[Issue]:
    return list(dict.fromkeys(issues))


def _field_issues(error: ValidationError, data: Mapping[str, Any]) -> list[Issue]:
    issues = []
    tasks = data.get("tasks")
    for detail in error.errors(include_url=False):
        loc: Loc = tuple(detail["loc"])
        task = None
        path = loc
        if (
            len(loc) >= 2
            and loc[0] == "tasks"
            and isinstance(loc[1], int)
            and isinstance(tasks, list)
        ):
            raw = tasks[loc[1]] if loc[1] < len(tasks) else None
            raw_id = raw.get("id") if isinstance(raw, Mapping) else None
            task = raw_id if isinstance(raw_id, str) else f"#{loc[1] + 1}"
            path = loc[2:]
        name = ".".join(str(part) for part in path)
        kind = detail["type"]
        if kind == "extra_forbidden":
            parent = ".".join(str(part) for part in path[:-1])
            message = f"unknown field '{path[-1]}'" + (f" in {parent}" if parent else "")
        elif kind == "too_short" and path == ("tasks",):
            message = "tasks: a workflow needs at least one task"
        elif kind == "missing":
            message = f"missing required field '{name}'"
        else:
            text = (
                _BOUNDS.get(kind, "{}").format(*(detail.get("ctx") or {}).values())
                if kind in _BOUNDS
                else ""
            )
            text = text or str(detail["msg"]).removeprefix("Value error, ")
            message = f"{name}: {text}" if name else text
        issues.append(Issue(task, message, loc))
    return issues


_BOUNDS = {
    "greater_than_equal": "must be >= {}",
    "greater_than": "must be > {}",
    "less_than_equal": "must be <= {}",
    "less_than": "must be < {}",
}


def _line(node: yaml.Node | None, loc: Loc) -> int | None:
    """1-based line of the deepest YAML node on the path ``loc``."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((value for key, value in node.value if key.value == part), None)
            if child is None:
                return line
            key_line = next(
                key.start_mark.line + 1 for key, value in node.value if key.value == part
            )
            line = key_line
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        else:
            return line
        node = child
    return line


def _read(path: Path) -> tuple[Any, yaml.Node | None, list[Problem]]:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        return None, None, [Problem(source, None, f"cannot read: {error.strerror or error}")]
    if path.suffix == ".json":
        try:
            return json.loads(text), None, []
        except RecursionError:  # libyaml stops at 1,000 levels with a YAMLError
            return None, None, [Problem(source, None, "JSON nests too deeply to read")]
        except json.JSONDecodeError as error:
            return (
                None,
                None,
                [
                    Problem(
                        source,
                        None,
                        f"JSON syntax error at line {error.lineno}: {error.msg}",
                        line=error.lineno,
                    )
                ],
            )
    loader = _Loader(text)
    try:  # parsed once: the nodes give the lines, the data is built from them
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or str(error)
        where = f" at line {line}" if line else ""
        return (
            None,
            None,
            [Problem(source, None, f"YAML syntax error{where}: {problem}", line=line)],
        )
    finally:
        loader.dispose()
    return data, node, []


def _check_file(path: Path) -> tuple[Definition | None, list[Problem]]:
    data, node, problems = _read(path)
    if problems:
        return None, problems
    return check_definition(data, str(path), node)


def load_definition(path: str | Path) -> Definition:
    """Load one definition file; raise ``DefinitionError`` with every problem."""
    definition, problems = _check_file(Path(path))
    if definition is None:
        raise DefinitionError(problems)
    return definition


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file()))
        else:
            files.append(path)
    return files


def validate_files(paths: Iterable[str | Path]) -> tuple[dict[str, Definition], list[Problem]]:
    """Check files (directories: every *.yaml, *.yml, *.json in them).

    Returns the valid definitions by file path and every problem (errors and
    warnings) of every file. Two files defining the same (name, version) is an error.
    """
    definitions: dict[str, Definition] = {}
    problems: list[Problem] = []
    owners: dict[tuple[str, int], str] = {}
    for path in _expand(paths):
        definition, found = _check_file(path)
        problems.extend(found)
        if definition is None:
            continue
        owner = owners.setdefault(definition.key, str(path))
        if owner != str(path):
            name, version = definition.key
            problems.append(
                Problem(
                    str(path), None, f"workflow {name} v{version} is already defined in {owner}"
                )
            )
            continue
        definitions[str(path)] = definition
    problems.extend(_unknown_targets(definitions))
    return definitions, problems


def _unknown_targets(definitions: Mapping[str, Definition]) -> list[Problem]:
    """Each ``on_complete`` start of a workflow (and version) not among ``definitions``:
    the files validated, or loaded, together are the catalog a deployment serves, so a
    start of anything else would be refused at the end of every workflow."""
    versions: dict[str, set[int]] = {}
    for definition in definitions.values():
        versions.setdefault(definition.name, set()).add(definition.version)
    problems: list[Problem] = []
    for path, definition in definitions.items():
        for index, entry in enumerate(definition.on_complete):
            start = entry.start
            if start is None:
                continue
            known = versions.get(start.workflow, set())
            if known and (start.version is None or start.version in known):
                continue
            what = start.workflow if start.version is None else f"{start.workflow} v{start.version}"
            among = ", ".join(sorted(versions)) or "none"
            problems.append(
                Problem(
                    path,
                    None,
                    f"on_complete[{index}].start: unknown workflow {what!r} (the definitions "
                    f"validated with it: {among}; give its file or the whole directory)",
                )
            )
    return problems


def load_definitions(
    path_or_dir: str | Path | Iterable[str | Path],
) -> dict[tuple[str, int], Definition]:
    """Load a file, or every definition file in a directory, keyed by (name, version)."""
    paths = [path_or_dir] if isinstance(path_or_dir, str | Path) else list(path_or_dir)
    definitions, problems = validate_files(paths)
    if any(problem.severity == "error" for problem in problems):
        raise DefinitionError(problems)
    return {definition.key: definition for definition in definitions.values()}


def summary(path: str | Path, definition: Definition) -> str:
    """The one line ``podium validate`` prints for a valid file."""
    count = len(definition.tasks)
    return f"{path}: ok — {definition.name} v{definition.version}, {count} task{'s' if count != 1 else ''}"
