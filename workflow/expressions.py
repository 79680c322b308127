"""CEL expressions and the ``${ ... }`` templates that embed them.

Engine choice: ``common-expression-language`` (import name ``cel``, a Rust
implementation behind PyO3) rather than ``cel-python`` (``celpy``, pure Python
on lark). Measured on the project's 2-core machine, four typical expressions,
microseconds per expression (``python benchmarks/bench_core.py --cel``):

===========================  =======  ==================  ====================
library                      compile  evaluate (fresh     evaluate (context
                                      activation)         shared by a render)
===========================  =======  ==================  ====================
common-expression-language   12       18                  5
cel-python 0.5               140      172 (incl. convert) n/a
===========================  =======  ==================  ====================

``cel`` is ~10x faster to compile and ~10-30x faster to evaluate, returns
native Python values (``celpy`` returns ``celtypes`` wrappers to convert back),
and ships type stubs. Its costs: ~0.12 s import time (it imports its CLI's
dependencies), and building a ``cel.Context`` converts every value handed to
it (~6 µs for a small activation). So an ``Activation`` builds the context
lazily, holds only the tasks an expression names, and plain field paths
(``${ workflow.input.sku }``, ``${ tasks.reserve.output.id }`` — most data
passing) are looked up directly, with CEL's result and CEL's missing-key
error; everything else goes through CEL.

Both are safe (CEL is not Turing-complete); nothing here ever calls ``eval``.

Template rules: a string that is exactly one ``${ expr }`` evaluates to the
expression's native value (a dict, a number...); a string with ``${ }`` parts
among text is interpolated into a string; ``$${`` is a literal ``${``; any
other value is a literal. Dicts and lists are walked recursively.

The activation holds ``workflow.input`` (plus ``workflow.id``) and, for each
task the expression refers to, ``tasks.<id>.output`` and ``tasks.<id>.state``.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import cel

__all__ = [
    "Activation",
    "Expression",
    "ExpressionError",
    "Template",
    "build_activation",
    "compile_expression",
    "compile_template",
    "to_json",
]

# Outcome shape an expression sees for one task: (state, output).
Outcome = tuple[str, Any]


class ExpressionError(Exception):
    """An expression did not compile or failed to evaluate."""


_STRING_LITERAL = re.compile(
    r"""(?:[rRbB]{0,2})('''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")""", re.S
)
_TASK_REF = re.compile(r"\btasks\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*(['\"])([^'\"]*)\2\s*\])")
_BOUND_VARS = re.compile(
    r"\.\s*(?:all|exists|exists_one|map|filter|transformList|transformMap|transformMapEntry)\s*\(\s*"
    r"([A-Za-z_][A-Za-z0-9_]*)\s*,(?:\s*([A-Za-z_][A-Za-z0-9_]*)\s*,)?"
)
KNOWN_VARIABLES = frozenset({"workflow", "tasks"})


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    text = re.sub(r"^Failed to parse expression '.*?': ", "", text, flags=re.S)
    text = re.sub(r"^ERROR: <input>:(\d+):(\d+): ", r"at column \2: ", text)
    text = re.sub(r" expecting \{.*?\}$", "", text.splitlines()[0] if text else "", flags=re.M)
    return text or type(error).__name__


class Activation:
    """The variables one evaluation sees; the CEL context is built only if CEL is needed.

    Converting Python data into a ``cel.Context`` costs a few microseconds per
    value, so plain field paths (``workflow.input.sku``,
    ``tasks.reserve.output.id``) are looked up directly in ``data``, with the
    same result and the same missing-key error a CEL evaluation would give.
    """

    __slots__ = ("_context", "data")

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self._context: cel.Context | None = None

    @property
    def context(self) -> cel.Context:
        if self._context is None:
            self._context = cel.Context(dict(self.data))
        return self._context


_PATH = re.compile(r"(?:workflow|tasks)(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)+")


@dataclass(frozen=True, slots=True)
class Expression:
    """One compiled CEL expression and the task ids it refers to."""

    source: str
    program: cel.Program
    tasks: frozenset[str]
    path: tuple[str, ...] | None = None  # set when the expression is a plain field path

    def evaluate(self, activation: Activation | Mapping[str, Any]) -> Any:
        """Evaluate against an activation; the result is plain JSON-able data."""
        if not isinstance(activation, Activation):
            activation = Activation(activation)
        if self.path is not None:
            value: Any = activation.data
            for name in self.path:
                if not isinstance(value, Mapping) or name not in value:
                    raise ExpressionError(f"{self.source!r}: no such key {name!r}")
                value = value[name]
            return value
        try:
            return to_json(self.program.execute(activation.context))
        except Exception as error:  # the engine raises KeyError, TypeError, RuntimeError...
            raise ExpressionError(f"{self.source!r}: {_first_line(error)}") from error


def compile_expression(source: str, variables: frozenset[str] = KNOWN_VARIABLES) -> Expression:
    """Compile ``source`` once; raise ``ExpressionError`` if it does not parse or names unknown variables.

    ``variables`` are the names it may use: ``workflow`` and ``tasks`` in a task; a
    trigger's filter sees ``event`` (``podium.workflow.hooks``).

    Compiled expressions are cached by source: a definition repeats its sources
    (``${ workflow.input.sku }``, or a value a YAML alias shares between places), and
    validation and the plan both compile them.
    """
    return _compile(source.strip(), variables)


@functools.lru_cache(maxsize=4096)
def _compile(source: str, variables: frozenset[str]) -> Expression:
    try:
        program = cel.compile(source)
    except Exception as error:
        raise ExpressionError(f"{source!r} does not compile: {_first_line(error)}") from error
    code = _STRING_LITERAL.sub("''", source)
    bound = {name for match in _BOUND_VARS.finditer(code) for name in match.groups() if name}
    unknown = sorted(set(program.variables()) - variables - bound)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        known = (
            "workflow.input or tasks.<id>"
            if variables == KNOWN_VARIABLES
            else " or ".join(sorted(variables))
        )
        raise ExpressionError(f"{source!r} uses unknown variable {names} (use {known})")
    refs = frozenset(
        m.group(1) or m.group(3) for m in _TASK_REF.finditer(_mask_strings_except_index(source))
    )
    path = tuple(part.strip() for part in source.split(".")) if _PATH.fullmatch(source) else None
    return Expression(source, program, refs, path)


def _mask_strings_except_index(source: str) -> str:
    # Blank string literals, except those used as ``tasks["id"]`` indexes.
    def mask(match: re.Match[str]) -> str:
        before = source[: match.start()].rstrip()
        return (
            match.group(0)
            if before.endswith("[") and before[:-1].rstrip().endswith("tasks")
            else "''"
        )

    return _STRING_LITERAL.sub(mask, source)


# -- templates ---------------------------------------------------------------


def _split(text: str) -> list[str | tuple[str]]:
    """Split a string into literal parts and ``(expression,)`` parts."""
    parts: list[str | tuple[str]] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("$${", i):
            literal.append("${")
            i += 3
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 2)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append((text[i + 2 : end].strip(),))
            i = end + 1
        else:
            literal.append(text[i])
            i += 1
    if literal:
        parts.append("".join(literal))
    return parts


def _closing_brace(text: str, i: int) -> int:
    depth, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in "'\"":
            quote = text[i : i + 3] if text.startswith(char * 3, i) else char
            i += len(quote)
            while i < n and not text.startswith(quote, i):
                i += 2 if text[i] == "\\" else 1
            i += len(quote)
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise ExpressionError(f"unterminated '${{' in {text!r}")


Render = Callable[[Activation], Any]


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled input/output mapping. ``render`` returns plain JSON-able data."""

    render_with: Render | None  # None: constant
    constant: Any
    expressions: tuple[Expression, ...]
    tasks: frozenset[str]

    @property
    def is_constant(self) -> bool:
        return self.render_with is None

    def render(self, activation: Activation | Mapping[str, Any] | None) -> Any:
        if self.render_with is None:
            return self.constant
        if not isinstance(activation, Activation):
            activation = Activation(activation or {})
        return self.render_with(activation)


def compile_template(value: Any, variables: frozenset[str] = KNOWN_VARIABLES) -> Template:
    """Compile every ``${ }`` in ``value`` (a literal, string, dict or list)."""
    expressions: list[Expression] = []
    render = _compile_value(value, expressions, {}, variables)
    refs = frozenset(ref for expression in expressions for ref in expression.tasks)
    return Template(render, value if render is None else None, tuple(expressions), refs)


def iter_expression_sources(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(path, source)`` of each ``${ }`` in ``value`` (raises ``ExpressionError`` on an unterminated one)."""
    if isinstance(value, str):
        for part in _split(value):
            if isinstance(part, tuple):
                yield path, part[0]
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from iter_expression_sources(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from iter_expression_sources(item, f"{path}[{index}]")


def _compile_value(
    value: Any,
    out: list[Expression],
    shared: dict[int, Render | None],
    variables: frozenset[str] = KNOWN_VARIABLES,
) -> Render | None:
    """The render function of ``value``; ``shared`` holds those of the containers compiled
    so far, by identity: a value a YAML alias puts in many places is compiled once."""
    if isinstance(value, str):
        return _compile_string(value, out, variables)
    if isinstance(value, Mapping | list | tuple):
        if id(value) not in shared:
            shared[id(value)] = _compile_container(value, out, shared, variables)
        return shared[id(value)]
    return None


def _compile_container(
    value: Mapping[Any, Any] | list[Any] | tuple[Any, ...],
    out: list[Expression],
    shared: dict[int, Render | None],
    variables: frozenset[str],
) -> Render | None:
    if isinstance(value, Mapping):
        items = [
            (str(key), item, _compile_value(item, out, shared, variables))
            for key, item in value.items()
        ]
        if all(render is None for _, _, render in items):
            return None
        pairs = [(key, item if render is None else render) for key, item, render in items]
        dynamic = frozenset(key for key, _, render in items if render is not None)
        return lambda ctx: {key: (part(ctx) if key in dynamic else part) for key, part in pairs}
    parts = [(item, _compile_value(item, out, shared, variables)) for item in value]
    if all(render is None for _, render in parts):
        return None
    return lambda ctx: [item if render is None else render(ctx) for item, render in parts]


def _compile_string(text: str, out: list[Expression], variables: frozenset[str]) -> Render | None:
    if "${" not in text:
        return None
    parts = _split(text)
    compiled: list[str | Expression] = []
    for part in parts:
        if isinstance(part, tuple):
            expression = compile_expression(part[0], variables)
            out.append(expression)
            compiled.append(expression)
        else:
            compiled.append(part)
    if len(compiled) == 1 and isinstance(compiled[0], Expression):
        return compiled[0].evaluate
    if all(isinstance(part, str) for part in compiled):  # only $${ escapes
        literal = "".join(part for part in compiled if isinstance(part, str))
        return lambda ctx: literal
    return lambda ctx: "".join(
        p if isinstance(p, str) else _interpolate(p.evaluate(ctx)) for p in compiled
    )


def _interpolate(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# -- activation and results --------------------------------------------------


def build_activation(
    workflow_input: Any,
    workflow_id: str,
    outcomes: Mapping[str, Outcome],
    refs: frozenset[str],
) -> Activation:
    """The variables for one evaluation: ``workflow`` and only the referenced tasks."""
    tasks = {}
    for ref in refs:
        outcome = outcomes.get(ref)
        if outcome is not None:
            tasks[ref] = {"state": str(outcome[0]), "output": outcome[1]}
    return Activation({"workflow": {"input": workflow_input, "id": workflow_id}, "tasks": tasks})


_SCALARS = (str, int, float, bool, type(None))


def to_json(value: Any) -> Any:
    """Convert an engine result to plain JSON-able Python."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict):
        return {
            key if isinstance(key, str) else _key(key): to_json(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, cel.OptionalValue):
        return to_json(value.value()) if value.has_value() else None
    raise ExpressionError(f"result of type {type(value).__name__} is not JSON data")


def _key(key: Any) -> str:
    converted = to_json(key)
    return converted if isinstance(converted, str) else _interpolate(converted)
