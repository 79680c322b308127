"""What a workflow's end sets off: its ``on_complete`` entries, decided purely.

The conductor (orchestration) and the tracker (choreography) call ``actions``
where they announce an end, and turn what it returns into events: a trigger of
another workflow under a derived id (``triggers.end_id``: a repeat starts
nothing), or the result object published to a topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from podium.workflow.definition import Definition
from podium.workflow.expressions import (
    Activation,
    ExpressionError,
    compile_expression,
    compile_template,
)
from podium.workflow.state import WorkflowState
from podium.workflow.triggers import OnComplete, end_id
from podium.workflow.validation import strip_template

__all__ = ["Action", "actions"]


@dataclass(frozen=True, slots=True)
class Action:
    """One ``on_complete`` entry to carry out; ``problem`` says why it cannot be."""

    index: int
    entry: OnComplete
    #: the id of the workflow a ``start`` starts
    workflow_id: str
    #: a ``start``'s rendered input
    input: dict[str, Any] | None = None
    problem: str | None = None


def activation(state: WorkflowState) -> Activation:
    """``workflow`` (its end included) and every task's state and output."""
    return Activation(
        {
            "workflow": {
                "id": state.workflow_id,
                "name": state.name,
                "version": state.version,
                "input": state.input,
                "state": str(state.status),
                "output": state.output,
                "error": state.error,
            },
            "tasks": {
                task_id: {"state": str(task.status), "output": task.output}
                for task_id, task in state.tasks.items()
            },
        }
    )


def actions(definition: Definition, state: WorkflowState) -> list[Action]:
    """The entries whose ``when`` holds for this ended workflow, in definition order.

    An expression that fails to evaluate (a missing key, a type error) makes that
    entry an ``Action`` with its ``problem``: reported, the others still run.
    """
    found: list[Action] = []
    context = activation(state)
    for index, entry in enumerate(definition.on_complete):
        target = end_id(state.workflow_id, index)
        try:
            if entry.when is not None:
                holds = compile_expression(strip_template(entry.when)).evaluate(context)
                if holds is not True:
                    continue
            rendered = None
            if entry.start is not None:
                rendered = compile_template(entry.start.input).render(context)
                if not isinstance(rendered, dict):
                    raise ExpressionError("start.input does not render to an object")
        except ExpressionError as error:
            found.append(Action(index, entry, target, problem=str(error)))
            continue
        found.append(Action(index, entry, target, input=rendered))
    return found
