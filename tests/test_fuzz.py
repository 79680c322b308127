"""Fuzzing the two parsers of outside input: no exception escapes but the documented ones.

- the codec (`podium.events.decode`) on records built from a valid event with any of
  its headers, key, value and topic replaced: a `CloudEvent` or `DecodeError`, and a
  dead letter and a salvage for every refusal;
- the definition loader on arbitrary JSON structures and definition-shaped ones
  (`parse_definition`: a `Definition` or `DefinitionError`; `Definition.model_validate`:
  a `Definition`, pydantic's `ValidationError` or `DefinitionError`) and on arbitrary
  YAML-ish text in a file (`load_definition`: a `Definition` or `DefinitionError`).

Examples are kept few (`make test`'s time budget); raise `PODIUM_FUZZ_EXAMPLES` to dig.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from podium.events import (
    CloudEvent,
    DecodeError,
    RawRecord,
    TaskCommand,
    dead_letter,
    decode,
    encode,
    new_event,
    topics,
)
from podium.events.codec import salvage
from podium.workflow.definition import Definition
from podium.workflow.loader import DefinitionError, load_definition, parse_definition

EXAMPLES = int(os.environ.get("PODIUM_FUZZ_EXAMPLES", "80"))
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)


def _dumps(value: Any) -> bytes:
    """JSON as any producer may write it: integers past 64 bits, NaN and Infinity too."""
    return json.dumps(value).encode()


# -- the codec -------------------------------------------------------------------------

VALID = encode(
    new_event(
        TaskCommand(
            workflow="order",
            version=1,
            command_id="wf-1:a:1",
            task_id="a",
            task_type="t",
            attempt=1,
            input={"x": 1},
            idempotency_key="wf-1:a",
        ),
        source="fuzz",
        workflow_id="wf-1",
        task_id="a",
        attempt=1,
    )
)
NAMES = [name for name, _ in VALID.headers]
header_values = st.one_of(
    st.binary(max_size=30),
    st.text(max_size=30).map(str.encode),
    st.sampled_from(
        [b"", b"1.0", b"0.3", b"wf-1", b"2026-11-30T00:00:00+00:00", b"-1", b"9" * 30, b"\xff"]
        + [f"podium.{t}".encode() for t in ("task.command", "workflow.triggered", "task.failed")]
    ),
)
topic_names = st.sampled_from(
    [topics.TRIGGERS, topics.WORKFLOWS, topics.commands("t"), topics.outcomes("t"), "other"]
)
values = st.one_of(
    st.none(),
    st.binary(max_size=100),
    json_values.map(_dumps),
    st.just(VALID.value),
    st.dictionaries(st.sampled_from(["workflow", "version", "input", "attempt"]), json_values).map(
        lambda d: _dumps({**orjson.loads(VALID.value or b"{}"), **d})
    ),
)


@st.composite
def records(draw: st.DrawFn) -> RawRecord:
    headers = list(VALID.headers)
    for name in draw(st.lists(st.sampled_from(NAMES), max_size=4)):
        headers = [(n, v) for n, v in headers if n != name]  # dropped
    for name in draw(st.lists(st.sampled_from([*NAMES, "ce_x", "other"]), max_size=4)):
        headers.append((name, draw(header_values)))  # added or repeated
    key = draw(st.one_of(st.none(), st.just(b"wf-1"), st.binary(max_size=8)))
    return RawRecord(draw(topic_names), 0, 0, key, draw(values), headers)


@fuzz
@given(records())
def test_the_codec_decodes_or_raises_decode_error(raw: RawRecord) -> None:
    try:
        event = decode(raw)
    except DecodeError as error:
        topic, dead = dead_letter(error)
        assert topic == topics.DEAD_LETTER
        assert dict(dead.headers)["podium_dlq_reason"] == error.reason.encode()
        salvage(raw)
    else:
        assert isinstance(event, CloudEvent)
        assert raw.key == event.workflowid.encode()


# -- the definition loader ----------------------------------------------------------------

plausible = st.one_of(
    json_values,
    st.sampled_from(
        ["a", "b", "t.x", "${ tasks.a.output.x }", "${ workflow.input", "1s", "-1s", "10m", "x y"]
    ),
)
tasks = st.fixed_dictionaries(
    {"id": st.sampled_from(["a", "b", "c"]) | plausible, "type": st.just("t.x") | plausible},
    optional={
        "depends_on": st.lists(st.sampled_from(["a", "b", "c", "z"]), max_size=3) | plausible,
        "when": st.sampled_from(["true", "tasks.a.output.x > 1", "(", "workflow.input.n"])
        | plausible,
        "input": json_values,
        "retry": st.fixed_dictionaries(
            {}, optional={"max_attempts": plausible, "backoff": plausible, "multiplier": plausible}
        )
        | plausible,
        "timeout": plausible,
        "compensate": st.fixed_dictionaries({"type": plausible}) | plausible,
        "skip_if_upstream_skipped": plausible,
    },
)
definitions = st.fixed_dictionaries(
    {"name": st.just("fuzzed") | plausible, "tasks": st.lists(tasks, max_size=4) | plausible},
    optional={
        "version": st.integers(min_value=-2, max_value=3) | plausible,
        "output": json_values,
        "on_failure": st.sampled_from(["fail", "compensate", "x"]) | plausible,
        "timeout": plausible,
        "input_schema": json_values,
        "triggers": st.lists(
            st.fixed_dictionaries({}, optional={"cron": plausible, "event": json_values}),
            max_size=2,
        )
        | plausible,
    },
)


@fuzz
@given(st.one_of(json_values, definitions))
def test_the_loader_builds_or_raises_definition_error(data: Any) -> None:
    try:
        assert isinstance(parse_definition(data), Definition)
    except DefinitionError as error:
        assert error.problems


@fuzz
@given(st.one_of(json_values, definitions))
def test_the_model_builds_or_raises_a_validation_error(data: Any) -> None:
    with contextlib.suppress(ValidationError, DefinitionError):
        Definition.model_validate(data)


@pytest.fixture(scope="module")
def folder() -> Any:
    with tempfile.TemporaryDirectory() as path:
        yield Path(path)


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True)


texts = st.one_of(
    st.text(max_size=200),
    definitions.map(_yaml),
    st.tuples(definitions.map(_yaml), st.integers(0, 300), st.text(max_size=12)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
    ),
    st.sampled_from(["a: &x [*x]", "- &a [*a, *a]", "!!python/object:os.system {}", "{{{", ":"]),
)


@fuzz
@given(text=texts, suffix=st.sampled_from([".yaml", ".json"]))
def test_a_definition_file_loads_or_raises_definition_error(
    folder: Path, text: str, suffix: str
) -> None:
    path = folder / f"fuzzed{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        assert isinstance(load_definition(path), Definition)
    except DefinitionError as error:
        assert error.problems
