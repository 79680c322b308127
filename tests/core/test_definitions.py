"""Definitions: durations, the model, the loader, the builder, validation messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from podium.services.service import TaskService
from podium.workflow.builder import Task, Workflow
from podium.workflow.definition import Compensation, Definition, RetryPolicy
from podium.workflow.durations import format_duration, parse_duration
from podium.workflow.loader import (
    DefinitionError,
    Problem,
    load_definition,
    load_definitions,
    parse_definition,
    summary,
    validate_files,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SHIPPED = [EXAMPLES / "order" / "order.yaml", EXAMPLES / "etl" / "etl.yaml"]
BROKEN = ROOT / "tests" / "broken" / "broken.yaml"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("5s", 5.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        (3, 3.0),
        (0.5, 0.5),
        ("1.5s", 1.5),
        ("7", 7.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "5 d", "-1s", -1, True, None, "", "ms"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0.25, 5, 120, 3600, 90)] == [
        "250ms",
        "5s",
        "2m",
        "1h",
        "90s",
    ]


# -- the shipped examples ------------------------------------------------------------


def test_examples_are_valid_and_summarised() -> None:
    definitions, problems = validate_files(SHIPPED)
    assert problems == []
    lines = sorted(summary(Path(p).name, d) for p, d in definitions.items())
    assert lines == ["etl.yaml: ok — etl v1, 7 tasks", "order.yaml: ok — order v1, 3 tasks"]


def test_order_example_shape() -> None:
    order = load_definition(EXAMPLES / "order" / "order.yaml")
    assert order.key == ("order", 1)
    assert order.on_failure == "compensate"
    assert order.order == ("reserve", "charge", "ship")
    release = order.task("reserve").compensate
    assert release is not None and release.type == "inventory.release"
    assert order.task("charge").retry.backoff == 0.2
    assert order.input_errors({"sku": "a", "qty": 1, "amount": 2.5}) == []
    errors = order.input_errors({"sku": 1, "qty": "x"})
    assert any("amount" in e for e in errors) and any(e.startswith("sku:") for e in errors)


def test_etl_example_shape() -> None:
    etl = load_definition(EXAMPLES / "etl" / "etl.yaml")
    assert etl.plan.roots == ("extract",)
    assert etl.plan.sinks == ("load",)
    assert etl.task("transform_b").retry.max_attempts == 3
    assert etl.task("transform_b").retry.backoff == 0.1
    assert etl.task("enrich").when is not None


def test_load_definitions_from_a_directory_keys_by_name_and_version() -> None:
    loaded = load_definitions(EXAMPLES / "order")
    assert set(loaded) == {("order", 1)}


def test_two_files_with_the_same_key_is_an_error(tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yml"):
        (tmp_path / name).write_text((EXAMPLES / "order" / "order.yaml").read_text())
    with pytest.raises(DefinitionError, match="already defined"):
        load_definitions(tmp_path)


def test_json_definitions_load(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"name": "x", "tasks": [{"id": "a", "type": "t"}]}))
    assert load_definition(path).key == ("x", 1)
    path.write_text('{"name": "x",\n "tasks": [}')
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    (problem,) = caught.value.problems
    assert problem.line == 2 and "JSON syntax error" in problem.message


@pytest.mark.parametrize("bad", ["inventory:reserve", "_private", "a" * 201, "sp ace"])
def test_a_task_type_that_cannot_name_a_topic_is_refused(tmp_path: Path, bad: str) -> None:
    """Validation, the topics module and `TaskService` share one pattern (it names topics)."""
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"name": "x", "tasks": [{"id": "a", "type": bad}]}))
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    assert "names Kafka topics" in str(caught.value)
    with pytest.raises(ValueError, match="names Kafka topics"):
        TaskService("svc").task(bad)


# -- every problem at once -------------------------------------------------------------

EXPECTED_BROKEN = [
    "broken.yaml: name: invalid workflow name 'Broken Order': use [a-z][a-z0-9_.-]*",
    "broken.yaml: timeout: invalid duration 'soon': use 250ms, 5s, 2m, 1h or a number of seconds",
    "broken.yaml: unknown field 'colour'",
    "broken.yaml: task 'charge': depends on unknown task 'reserv'",
    "broken.yaml: task 'charge': retry.max_attempts: must be >= 1",
    "broken.yaml: task 'charge': retry.multiplier: must be >= 1.0",
    "broken.yaml: task 'charge': retry.jitter: must be <= 1.0",
    "broken.yaml: task 'charge': retry: max_backoff (1s) must be >= backoff (5s)",
    "broken.yaml: task 'Ship-It': id: invalid task id 'Ship-It': use lowercase letters, digits and '_' ([a-z_][a-z0-9_]*)",
    "broken.yaml: task 'charge': duplicate task id (tasks #2 and #4)",
    "broken.yaml: task 'a': dependency cycle: a -> b -> c -> a",
    "broken.yaml: task 'notify': when: expression 'workflow.input.amount >' does not compile: at column 24: Syntax error: mismatched input '<EOF>'",
    "broken.yaml: task 'notify': input.total: expression refers to unknown task 'ship'",
    "broken.yaml: task 'notify': input.upstream: expression refers to task 'b', which is not upstream of 'notify'",
    "broken.yaml: task 'notify': unknown field 'priority'",
    "broken.yaml: task 'reserve': warning: has 'compensate' but on_failure is 'fail': the compensation never runs",
]


def test_broken_definition_reports_every_problem_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BROKEN.parent)
    definitions, problems = validate_files(["broken.yaml"])
    assert definitions == {}
    assert [str(p) for p in problems] == EXPECTED_BROKEN
    assert all(p.line is not None for p in problems)
    cycle = next(p for p in problems if "cycle" in p.message)
    assert (cycle.task, cycle.line, cycle.severity) == ("a", 22, "error")
    assert problems[-1].severity == "warning"
    with pytest.raises(DefinitionError) as caught:
        load_definition("broken.yaml")
    assert len(caught.value.problems) == len(EXPECTED_BROKEN)
    assert str(caught.value).splitlines() == EXPECTED_BROKEN


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ntasks:\n  - id: a\n    type: [unclosed\n")
    _, problems = validate_files([path])
    (problem,) = problems
    assert problem.line is not None and problem.line >= 4
    assert str(problem).startswith(f"{path}: YAML syntax error at line {problem.line}")


def test_not_a_mapping() -> None:
    with pytest.raises(DefinitionError, match="expected a mapping"):
        parse_definition(["a"])


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ([{"id": "a", "type": "t", "depends_on": ["a"]}], "dependency cycle: a -> a"),
        (
            [{"id": "a", "type": "t", "when": "tasks.b.output"}, {"id": "b", "type": "t"}],
            "which is not upstream of 'a'",
        ),
        ([{"id": "a", "type": "t", "input": {"x": "${ nope.x }"}}], "unknown variable 'nope'"),
        ([{"id": "a", "type": "t", "input": {"x": "${ workflow.input"}}], "unterminated"),
        (
            [{"id": "a", "type": "t", "retry": {"backoff": -1}}],
            "retry.backoff: invalid duration -1: must be >= 0",
        ),
        (
            [
                {
                    "id": "a",
                    "type": "t",
                    "compensate": {"type": "u", "input": {"x": "${ tasks.zz.output }"}},
                }
            ],
            "unknown task 'zz'",
        ),
        ([], "tasks: a workflow needs at least one task"),
        ([{"id": "a"}], "missing required field 'type'"),
    ],
)
def test_single_problems(tasks: list[dict[str, object]], message: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_definition({"name": "x", "on_failure": "compensate", "tasks": tasks})
    assert message in str(caught.value)


def test_transitive_upstream_and_own_output_in_compensation_are_allowed() -> None:
    d = parse_definition(
        {
            "name": "x",
            "on_failure": "compensate",
            "output": {"r": "${ tasks.c.output }"},
            "tasks": [
                {
                    "id": "a",
                    "type": "t",
                    "compensate": {"type": "u", "input": {"id": "${ tasks.a.output.id }"}},
                },
                {"id": "b", "type": "t", "depends_on": "a"},
                {"id": "c", "type": "t", "depends_on": ["b"], "when": "${ tasks.a.output.ok }"},
            ],
        }
    )
    assert d.plan.tasks["c"].observes == ("b", "a")


def test_invalid_input_schema_is_reported() -> None:
    with pytest.raises(DefinitionError, match="not a valid JSON Schema"):
        parse_definition(
            {"name": "x", "input_schema": {"type": 12}, "tasks": [{"id": "a", "type": "t"}]}
        )


def test_problem_str() -> None:
    assert str(Problem("order.yaml", "charge", "depends on unknown task 'reserv'")) == (
        "order.yaml: task 'charge': depends on unknown task 'reserv'"
    )


# -- the model directly -------------------------------------------------------------------


def test_direct_model_validation_also_runs_the_graph_checks() -> None:
    with pytest.raises(ValidationError, match="dependency cycle"):
        Definition.model_validate(
            {"name": "x", "tasks": [{"id": "a", "type": "t", "depends_on": ["a"]}]}
        )


def test_definition_is_frozen_and_forbids_unknown_fields() -> None:
    d = parse_definition({"name": "x", "tasks": [{"id": "a", "type": "t"}]})
    with pytest.raises(ValidationError):
        d.name = "y"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        RetryPolicy.model_validate({"tries": 3})


def test_plan_is_compiled_once() -> None:
    d = parse_definition({"name": "x", "tasks": [{"id": "a", "type": "t", "when": "true"}]})
    assert d.plan is d.plan


def test_task_lookup() -> None:
    d = parse_definition({"name": "x", "tasks": [{"id": "a", "type": "t"}]})
    assert d.task("a").type == "t"
    with pytest.raises(KeyError):
        d.task("b")


# -- the builder ------------------------------------------------------------------------


RELEASE_RETRY = {"max_attempts": 5, "backoff": "500ms", "max_backoff": "10s"}


def test_builder_produces_the_same_definition_as_the_yaml() -> None:
    built = (
        Workflow(
            "order",
            on_failure="compensate",
            timeout="60s",
            input_schema=load_definition(EXAMPLES / "order" / "order.yaml").input_schema,
            output={
                "reservation_id": "${ tasks.reserve.output.reservation_id }",
                "charge_id": "${ tasks.charge.output.charge_id }",
                "tracking": "${ tasks.ship.output.tracking }",
            },
            tasks=[
                Task(
                    "reserve",
                    "inventory.reserve",
                    input={"sku": "${ workflow.input.sku }", "qty": "${ workflow.input.qty }"},
                    retry=RetryPolicy(
                        max_attempts=3, backoff=0.2, multiplier=2.0, max_backoff=5, jitter=0.1
                    ),
                    timeout="5s",
                    compensate={
                        "type": "inventory.release",
                        "input": {"reservation_id": "${ tasks.reserve.output.reservation_id }"},
                        "retry": RELEASE_RETRY,
                    },
                ),
                Task(
                    "charge",
                    "payments.charge",
                    depends_on=["reserve"],
                    input={"amount": "${ workflow.input.amount }", "order": "${ workflow.id }"},
                    retry={"max_attempts": 3, "backoff": "200ms", "max_backoff": "2s"},
                    timeout=5,
                    compensate=Compensation(
                        type="payments.refund",
                        input={"charge_id": "${ tasks.charge.output.charge_id }"},
                        retry=RetryPolicy(max_attempts=5, backoff=0.5, max_backoff=10),
                    ),
                ),
            ],
        )
        .task(
            Task(
                "ship",
                "shipping.ship",
                depends_on=["charge"],
                input={
                    "sku": "${ workflow.input.sku }",
                    "qty": "${ workflow.input.qty }",
                    "reservation_id": "${ tasks.reserve.output.reservation_id }",
                },
                timeout="10s",
            )
        )
        .build()
    )
    assert built == load_definition(EXAMPLES / "order" / "order.yaml")


def test_builder_reports_every_problem_at_build() -> None:
    flow = (
        Workflow("x")
        .task(Task("a", "t", depends_on=["zz"]))
        .task(Task("a", "t", retry={"max_attempts": 0}))
    )
    with pytest.raises(DefinitionError) as caught:
        flow.build()
    messages = [p.message for p in caught.value.problems]
    assert "depends on unknown task 'zz'" in messages
    assert "duplicate task id (tasks #1 and #2)" in messages
    assert "retry.max_attempts: must be >= 1" in messages
    assert caught.value.problems[0].file == "<workflow x>"


def test_model_copy_with_changes_drops_the_cached_plan() -> None:
    d = parse_definition({"name": "x", "tasks": [{"id": "a", "type": "t"}]})
    assert d.plan.roots == ("a",)
    same = d.model_copy()
    changed = d.model_copy(update={"tasks": (d.task("a").model_copy(update={"id": "b"}),)})
    assert same.plan is d.plan
    assert changed.plan.roots == ("b",)


# -- definitions at scale and hostile ones (figures: benchmarks/definitions.py) ------------


def _alias_bomb(levels: int) -> str:
    lines = ["name: bomb", "tasks:", "  - id: a", "    type: t.a", "    input:"]
    lines.append('      l0: &l0 ["${ workflow.input.x }"]')
    lines += [f"      l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_naming_the_task_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(_alias_bomb(9))  # 9^8 = 43 million expressions once expanded
    definitions, problems = validate_files([path])
    assert definitions == {}
    (problem,) = problems
    assert (problem.task, problem.line) == ("a", 14)
    assert problem.message.startswith("input.l8: expands to 91,474,282 values through YAML aliases")
    assert "at most 1,000,000" in problem.message


def test_a_value_that_contains_itself_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("name: x\ntasks:\n  - id: a\n    type: t.a\n    input: {l: &l [1, *l]}\n")
    (problem,) = validate_files([path])[1]
    assert problem.task == "a" and problem.message.startswith("input.l[1]: contains itself")


def test_the_model_built_directly_refuses_a_bomb_too() -> None:
    shared: list[object] = ["${ workflow.input.x }"]
    for _ in range(8):
        shared = [shared] * 9
    with pytest.raises(ValidationError, match=r"task 'a': input\.l: expands to"):
        Definition.model_validate(
            {"name": "x", "tasks": [{"id": "a", "type": "t", "input": {"l": shared}}]}
        )


def test_aliases_under_the_bound_are_values_like_any_other(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    path.write_text(
        "name: x\nretry: &r {max_attempts: 3, backoff: 1s}\nshared: &s {v: '${ workflow.input.v }'}\n"
        "tasks:\n  - {id: a, type: t.a, retry: *r, input: {p: *s, q: [*s, *s]}}\n"
        "  - {id: b, type: t.a, depends_on: [a], retry: *r, input: *s}\n"
    )
    _, problems = validate_files([path])
    assert [p.message for p in problems] == ["unknown field 'retry'", "unknown field 'shared'"]
    data = {
        "name": "x",
        "tasks": [
            {
                "id": "a",
                "type": "t",
                "input": {"p": (s := {"v": "${ workflow.input.v }"}), "q": [s, s]},
            },
            {"id": "b", "type": "t", "depends_on": ["a"], "input": s},
        ],
    }
    plan = parse_definition(data).plan
    rendered = plan.tasks["a"].input.render({"workflow": {"input": {"v": 7}}})
    assert rendered == {"p": {"v": 7}, "q": [{"v": 7}, {"v": 7}]}
    assert rendered["q"][0] is not rendered["q"][1]  # rendered apart: nothing shared downstream
    assert plan.tasks["b"].input.render({"workflow": {"input": {"v": 8}}}) == {"v": 8}


def test_a_long_chain_listed_downstream_first_validates() -> None:
    # thousands deep: the cycle search and the upstream check must not recurse
    n = 3000
    tasks = [
        {
            "id": f"t{i}",
            "type": "t",
            **({"depends_on": [f"t{i - 1}"]} if i else {}),
            "input": {
                "x": f"${{ tasks.t{max(i - 1, 0)}.output.x }}" if i else "${ workflow.input.x }"
            },
        }
        for i in range(n)
    ][::-1]
    tasks[0]["when"] = "tasks.t0.output.ok"  # transitively upstream: allowed
    definition = parse_definition({"name": "x", "tasks": tasks})
    assert definition.order[:2] == ("t0", "t1") and definition.order[-1] == f"t{n - 1}"
    tasks[-1]["when"] = f"tasks.t{n - 1}.output.ok"  # t0 refers to the last task: downstream
    with pytest.raises(DefinitionError, match=f"task 't{n - 1}', which is not upstream of 't0'"):
        parse_definition({"name": "x", "tasks": tasks})


def test_upstream_is_checked_across_a_cycle_elsewhere() -> None:
    tasks = [
        {"id": "a", "type": "t"},
        {"id": "b", "type": "t", "depends_on": ["a"]},
        {"id": "c", "type": "t", "depends_on": ["b"], "input": {"x": "${ tasks.a.output }"}},
        {"id": "d", "type": "t", "depends_on": ["e"], "input": {"x": "${ tasks.c.output }"}},
        {"id": "e", "type": "t", "depends_on": ["d"], "input": {"x": "${ tasks.d.output }"}},
    ]
    with pytest.raises(DefinitionError) as caught:
        parse_definition({"name": "x", "tasks": tasks})
    assert [str(p) for p in caught.value.problems] == [
        "<memory>: task 'd': dependency cycle: d -> e -> d",
        "<memory>: task 'd': input.x: expression refers to task 'c', which is not upstream of 'd'",
    ]


@pytest.mark.parametrize(("suffix", "depth"), [(".yaml", 990), (".json", 900), (".json", 100_000)])
def test_a_value_nested_too_deep_is_refused_not_a_crash(
    tmp_path: Path, suffix: str, depth: int
) -> None:
    path = tmp_path / f"deep{suffix}"
    nested = "[" * depth + '"${ workflow.input }"' + "]" * depth
    tasks = f'[{{"id": "a", "type": "t.a", "input": {{"x": {nested}}}}}]'
    path.write_text(f'{{"name": "x", "tasks": {tasks}}}')
    (problem,) = validate_files([path])[1]
    if depth > 1000:  # past what the JSON parser itself can read
        assert problem.message == "JSON nests too deeply to read"
    else:
        assert (problem.task, problem.message) == ("a", "input.x: nests more than 100 levels deep")


SCHEMAS = {
    "plain": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}},
    "local $ref": {
        "$defs": {"count": {"type": "integer", "minimum": 0}},
        "type": "object",
        "properties": {"n": {"$ref": "#/$defs/count"}},
    },
    "pattern": {"type": "object", "properties": {"sku": {"type": "string", "pattern": "^A-"}}},
}
INPUTS = [{"n": 1}, {"n": -1}, {"n": "x"}, {}, {"sku": "A-1"}, {"sku": "B"}, {"n": 1.0}]


@pytest.mark.parametrize("schema", list(SCHEMAS))
def test_the_fast_input_check_agrees_with_jsonschema(schema: str) -> None:
    """jsonschema_rs answers whether an input is valid on the hot path; jsonschema words
    the refusal. Both must agree, or a refusal would come without a reason."""
    import jsonschema

    definition = Definition.model_validate(
        {"name": "checked", "input_schema": SCHEMAS[schema], "tasks": [{"id": "a", "type": "t"}]}
    )
    reference = jsonschema.validators.validator_for(SCHEMAS[schema])(SCHEMAS[schema])
    for value in INPUTS:
        errors = definition.input_errors(value)
        assert (errors == []) is reference.is_valid(value), (value, errors)
        assert all(": " in e for e in errors)
    validator = definition._validator
    assert validator is not None
    assert (validator.fast is None) is (schema == "local $ref")  # a $ref: jsonschema alone
