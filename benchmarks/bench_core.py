"""Decisions per second of the pure core (``workflow.machine.decide``).

    python benchmarks/bench_core.py [--out benchmarks/results/core.json] [--seconds 2] [--cel]

Scenarios (every task's input maps an upstream output through CEL, as real
definitions do):

- ``chain5``: a -> b -> c -> d -> e; one workflow = 6 decisions
  (Started + 5 outcomes).
- ``fanout50``: one root, 48 parallel tasks, one join; one workflow = 51
  decisions.
- ``chain5_json``: chain5 plus a JSON round trip of the state after every
  decision (what the conductor's changelog costs on top).

``--cel`` also measures the two CEL libraries (compile and evaluate) the
expression module chose between; ``cel-python`` must be installed for that.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from podium.workflow.definition import Definition  # noqa: E402
from podium.workflow.loader import parse_definition  # noqa: E402
from podium.workflow.machine import Started, TaskSucceeded, WorkflowState, decide  # noqa: E402


def chain(n: int) -> Definition:
    tasks: list[dict[str, Any]] = [
        {"id": "t0", "type": "svc.step", "input": {"x": "${ workflow.input.x }"}}
    ]
    for i in range(1, n):
        tasks.append(
            {
                "id": f"t{i}",
                "type": "svc.step",
                "depends_on": [f"t{i - 1}"],
                "input": {"x": f"${{ tasks.t{i - 1}.output.x }}"},
            }
        )
    return parse_definition({"name": f"chain{n}", "tasks": tasks})


def fanout(n: int) -> Definition:
    width = n - 2
    tasks: list[dict[str, Any]] = [
        {"id": "root", "type": "svc.split", "input": {"x": "${ workflow.input.x }"}}
    ]
    tasks += [
        {
            "id": f"p{i}",
            "type": "svc.part",
            "depends_on": ["root"],
            "input": {"x": "${ tasks.root.output.x }", "i": i},
        }
        for i in range(width)
    ]
    tasks.append({"id": "join", "type": "svc.join", "depends_on": [f"p{i}" for i in range(width)]})
    return parse_definition({"name": f"fanout{n}", "tasks": tasks})


def one_workflow(definition: Definition, number: int, persist: bool) -> int:
    """Drive one workflow to Succeeded; return the number of decisions."""
    state, commands = decide(
        definition, None, Started(workflow_id=f"w{number}", input={"x": 1}, seed=number), 0.0
    )
    decisions = 1
    queue = [c for c in commands if c.kind == "run_task"]
    while queue:
        command = queue.pop()
        state, commands = decide(
            definition,
            state,
            TaskSucceeded(task_id=command.task_id, attempt=1, output={"x": 2}),
            1.0,
        )
        if persist:
            state = WorkflowState.model_validate_json(state.model_dump_json())
        decisions += 1
        queue.extend(c for c in commands if c.kind == "run_task")
    assert state is not None and state.status == "Succeeded"
    return decisions


def measure(run: Callable[[int], int], seconds: float) -> dict[str, float]:
    for warm in range(50):
        run(-warm)
    workflows = decisions = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        decisions += run(workflows)
        workflows += 1
    return {
        "workflows_per_s": round(workflows / elapsed, 1),
        "decisions_per_s": round(decisions / elapsed, 1),
        "us_per_decision": round(elapsed / decisions * 1e6, 2),
    }


def cel_figures() -> dict[str, Any]:
    import cel

    expressions = [
        "workflow.input.amount > 0",
        "tasks.reserve.output.id",
        "{'a': workflow.input.sku, 'n': workflow.input.qty * 2}",
        "tasks.charge.state == 'Skipped'",
    ]
    activation = {
        "workflow": {"input": {"amount": 10.5, "sku": "x", "qty": 3}},
        "tasks": {
            "reserve": {"output": {"id": "r1"}, "state": "Succeeded"},
            "charge": {"output": None, "state": "Skipped"},
        },
    }

    def per_expression(fn: Callable[[], object], rounds: int) -> float:
        start = time.perf_counter()
        for _ in range(rounds):
            fn()
        return round((time.perf_counter() - start) / rounds / len(expressions) * 1e6, 2)

    programs = [cel.compile(e) for e in expressions]
    figures: dict[str, Any] = {
        "common-expression-language": {
            "compile_us": per_expression(lambda: [cel.compile(e) for e in expressions], 2000),
            "evaluate_us": per_expression(lambda: [p.execute(activation) for p in programs], 2000),
            "evaluate_shared_context_us": per_expression(
                lambda: [p.execute(ctx) for ctx in [cel.Context(activation)] for p in programs],
                2000,
            ),
        }
    }
    try:
        import celpy
    except ImportError:
        figures["cel-python"] = "not installed"
        return figures
    env = celpy.Environment()
    compiled = [env.program(env.compile(e)) for e in expressions]
    figures["cel-python"] = {
        "compile_us": per_expression(
            lambda: [env.program(env.compile(e)) for e in expressions], 200
        ),
        "evaluate_us": per_expression(
            lambda: [p.evaluate(celpy.json_to_cel(activation)) for p in compiled], 200
        ),
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--cel", action="store_true", help="also measure both CEL libraries")
    args = parser.parse_args()
    chain5, fan50 = chain(5), fanout(50)
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "chain5": measure(lambda n: one_workflow(chain5, n, False), args.seconds),
        "fanout50": measure(lambda n: one_workflow(fan50, n, False), args.seconds),
        "chain5_json": measure(lambda n: one_workflow(chain5, n, True), args.seconds),
    }
    if args.cel:
        results["cel"] = cel_figures()
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
