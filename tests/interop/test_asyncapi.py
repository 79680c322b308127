"""`podium asyncapi` and `podium schemas`: the wire contract as documents, validated offline.

`asyncapi-3.0.0.schema.json` is the AsyncAPI 3.0.0 JSON Schema as the `@asyncapi/specs`
npm package (6.11.1, Apache-2.0, `asyncapi-specs.LICENSE`) ships it: every definition it
refers to is inside it, so validation needs no network.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import jsonschema
import orjson
import pytest
import yaml

from podium.events import TaskCommand, WorkflowTriggered, encode, new_event
from podium.services.execute import outcome_event, started

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
SPEC = orjson.loads((HERE / "asyncapi-3.0.0.schema.json").read_bytes())


def _podium(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "podium", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def document() -> dict:
    return yaml.safe_load(_podium("asyncapi", "--definitions", "examples/order/order.yaml"))


def test_the_document_is_valid_asyncapi_3(document: dict) -> None:
    validator = jsonschema.Draft7Validator(SPEC)
    assert [e.message for e in validator.iter_errors(document)] == []
    broken = copy.deepcopy(document)
    next(iter(broken["operations"].values()))["action"] = "publish"  # AsyncAPI 2's word
    assert not validator.is_valid(broken)  # the schema is really checked


def test_it_names_every_topic_and_who_writes_it(document: dict) -> None:
    addresses = {c["address"] for c in document["channels"].values()}
    assert {
        "podium.triggers", "podium.workflows",
        "podium.tasks.payments.charge.commands", "podium.tasks.payments.refund.outcomes",
        "podium.dlq", "podium.conductor.changelog", "podium.choreo.{service}.changelog",
    } <= addresses  # fmt: skip
    ops = document["operations"]
    assert ops["orchestration_service_of_payments_charge_send_outcomes_payments_charge"]
    # choreography: the charge participant reads the outcomes its join waits for
    assert ops["choreography_service_of_payments_charge_receive_outcomes_inventory_reserve"]


def test_the_headers_and_payload_schemas_accept_what_podium_writes(document: dict) -> None:
    command = TaskCommand(
        workflow="order", version=1, command_id="w1:charge:1", task_id="charge",
        task_type="payments.charge", attempt=1, input={"amount": 3}, idempotency_key="k",
    )  # fmt: skip
    cause = new_event(
        command, source="podium/conductor", workflow_id="w1", task_id="charge", attempt=1
    )
    trigger = WorkflowTriggered(workflow="order", version=1, input={"sku": "A"})
    for event in (cause, outcome_event(started(command), "w1", "x", cause),
                  new_event(trigger, source="me", workflow_id="w1")):  # fmt: skip
        message = document["components"]["messages"][
            event.type.removeprefix("podium.").replace(".", "_")
        ]
        record = encode(event)
        headers = {name: value.decode() for name, value in record.headers}
        jsonschema.validate(headers, message["headers"])
        schema = {**message["payload"], "components": document["components"]}
        jsonschema.validate(orjson.loads(record.value or b""), schema)


def test_podium_schemas_writes_the_payload_schemas_alone() -> None:
    schemas = orjson.loads(_podium("schemas"))
    jsonschema.Draft202012Validator.check_schema(schemas)
    ref = schemas["x-podium-event-types"]["podium.task.command"]["$ref"]
    command = {**schemas, **schemas["$defs"][ref.rsplit("/", 1)[-1]]}
    validator = jsonschema.Draft202012Validator(command)
    assert not validator.is_valid({"workflow": "w"})
    assert validator.is_valid({
        "workflow": "order", "version": 1, "command_id": "c", "task_id": "t",
        "task_type": "x", "attempt": 1, "idempotency_key": "k",
    })  # fmt: skip
