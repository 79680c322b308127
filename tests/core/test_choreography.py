"""The join rule a choreography service applies, and its agreement with the state machine."""

from __future__ import annotations

from podium.workflow.choreography import (
    WAIT,
    Abort,
    Fail,
    Ready,
    Skip,
    compensation_order,
    observes,
    readiness,
    render_output,
    to_compensate,
    waits_for,
)

from .helpers import definition, task

D = definition(
    task("a"),
    task("b", "a", input={"x": "${ tasks.a.output.x }"}),
    task("c", "a", when="workflow.input.go", compensate={"type": "undo.c"}),
    task("d", "b", "c", input={"c": "${ tasks.c.state }", "a": "${ tasks.a.output }"}),
    task("e", "c", skip_if_upstream_skipped=True, compensate={"type": "undo.e"}),
    on_failure="compensate",
)


def test_waits_for_and_observes() -> None:
    assert waits_for(D, "d") == {"b", "c"}
    assert observes(D, "d") == {"a", "b", "c"}  # it reads tasks.a.output too
    assert waits_for(D, "a") == frozenset()


def test_readiness_outcomes() -> None:
    go = {"go": True}
    assert readiness(D, "a", {}, go) == Ready({})
    assert readiness(D, "b", {}, go) is WAIT
    assert readiness(D, "b", {"a": ("Running", None)}, go) is WAIT
    assert readiness(D, "b", {"a": ("Succeeded", {"x": 5})}, go) == Ready({"x": 5})
    assert readiness(D, "b", {"a": ("Failed", None)}, go) == Abort("a")
    assert readiness(D, "c", {"a": ("Succeeded", {})}, {"go": False}) == Skip(
        "when is false: workflow.input.go"
    )
    assert readiness(D, "c", {"a": ("Succeeded", {})}, {}) == Fail(
        "ExpressionError", "when: 'workflow.input.go': no such key 'go'"
    )
    both = {"b": ("Succeeded", 1), "c": ("Skipped", None)}
    assert readiness(D, "d", both, go) is WAIT  # a's outcome not collected yet
    assert readiness(D, "d", {**both, "a": ("Succeeded", 3)}, go) == Ready({"c": "Skipped", "a": 3})
    assert readiness(D, "e", {"c": ("Skipped", None)}, go) == Skip("upstream skipped: c")


def test_compensation_order_and_to_compensate() -> None:
    assert compensation_order(D, ["a", "c", "b", "e"]) == ["e", "c"]
    assert to_compensate(D, "d", ["a", "c", "e"]) == ["e", "c"]
    assert to_compensate(definition(task("a", compensate={"type": "u"})), "b", ["a"]) == []


def test_default_output() -> None:
    assert render_output(D, {"d": ("Succeeded", 1), "e": ("Skipped", None)}, {}) == {
        "d": 1,
        "e": None,
    }
