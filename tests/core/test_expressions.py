"""CEL expressions and ``${ }`` templates."""

from __future__ import annotations

from typing import Any

import pytest

from podium.workflow.expressions import (
    ExpressionError,
    build_activation,
    compile_expression,
    compile_template,
    to_json,
)

OUTCOMES = {"a": ("Succeeded", {"id": 7, "tags": ["x"]}), "s": ("Skipped", None)}


def render(value: Any, workflow_input: Any = None) -> Any:
    template = compile_template(value)
    return template.render(
        build_activation(workflow_input or {"n": 2, "s": "hi"}, "wf-1", OUTCOMES, template.tasks)
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${ workflow.input.n }", 2),
        ("${workflow.input.n * 3}", 6),
        ("${ tasks.a.output }", {"id": 7, "tags": ["x"]}),
        ("${ {'k': [workflow.input.n, 'v']} }", {"k": [2, "v"]}),
        ("id-${ tasks.a.output.id }/${ workflow.input.s }", "id-7/hi"),
        ("${ tasks.a.output.tags }!", '["x"]!'),
        ("n=${ workflow.input.n > 1 } ${ tasks.s.output }", "n=true null"),
        ("plain", "plain"),
        ("$${ not an expression }", "${ not an expression }"),
        ("${ '}' + workflow.input.s }", "}hi"),
        ("${ tasks.s.state }", "Skipped"),
        ("${ workflow.id }", "wf-1"),
        (12, 12),
        (None, None),
        (
            {"a": ["${ workflow.input.n }", 1, {"b": "${ tasks['a'].output.id }"}]},
            {"a": [2, 1, {"b": 7}]},
        ),
    ],
)
def test_template_rules(value: Any, expected: Any) -> None:
    assert render(value) == expected


def test_constant_templates_are_returned_as_is() -> None:
    value = {"a": [1, "x"], "b": None}
    template = compile_template(value)
    assert template.is_constant and template.render(None) == value


def test_task_references_are_collected() -> None:
    expression = compile_expression(
        "tasks.a.output.x + tasks['b'].output.y + size('tasks.c.output')"
    )
    assert expression.tasks == {"a", "b"}
    template = compile_template({"x": "${ tasks.a.state }", "y": ["${ tasks.z.output }"]})
    assert template.tasks == {"a", "z"}


def test_comprehension_variables_are_not_unknown() -> None:
    expression = compile_expression("workflow.input.items.all(i, i > 0)")
    context = build_activation({"items": [1, 2]}, "w", {}, expression.tasks)
    assert expression.evaluate(context) is True


@pytest.mark.parametrize("source", ["1 +", "foo.bar", "workflow.input.x ==="])
def test_bad_expressions_do_not_compile(source: str) -> None:
    with pytest.raises(ExpressionError):
        compile_expression(source)


@pytest.mark.parametrize(
    "source", ["workflow.input.missing", "1 / 0", "workflow.input.s + 1", "tasks.q.output"]
)
def test_evaluation_errors_become_expression_errors(source: str) -> None:
    expression = compile_expression(source)
    with pytest.raises(ExpressionError, match="'"):
        expression.evaluate(build_activation({"s": "x"}, "w", {}, expression.tasks))


def test_results_are_plain_json() -> None:
    expression = compile_expression(
        "[b'hi', timestamp('2020-01-01T00:00:00Z'), duration('1.5s'), {1: 2}]"
    )
    assert expression.evaluate(build_activation({}, "w", {}, frozenset())) == [
        "aGk=",
        "2020-01-01T00:00:00Z",
        1.5,
        {"1": 2},
    ]
    assert to_json((1, {"a": (2,)})) == [1, {"a": [2]}]
    with pytest.raises(ExpressionError):
        to_json(object())


@pytest.mark.parametrize(
    "source",
    ["workflow.input.n", "tasks.a.output", "tasks.a.output.id", "tasks.s.state", "tasks.a.state"],
)
def test_field_path_fast_path_matches_cel(source: str) -> None:
    fast = compile_expression(source)
    assert fast.path is not None
    slow = type(fast)(fast.source, fast.program, fast.tasks, None)
    activation = build_activation({"n": 2}, "w", OUTCOMES, fast.tasks)
    assert fast.evaluate(activation) == slow.evaluate(activation)
    missing = build_activation(
        {}, "w", {"a": ("Succeeded", {}), "s": ("Skipped", None)}, fast.tasks
    )
    if source not in ("tasks.a.output", "tasks.s.state", "tasks.a.state"):
        with pytest.raises(ExpressionError):
            fast.evaluate(missing)
        with pytest.raises(ExpressionError):
            slow.evaluate(missing)
