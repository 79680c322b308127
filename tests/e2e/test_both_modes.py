"""Every task-state rule of the core, seen on the wire through a real broker.

The `deployment` fixture runs every case in both modes (orchestration and
choreography): the same definitions and handlers must give the same workflow
state, output and task states.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson
import pytest

from podium.client import InputRejected
from podium.events import ErrorInfo, KafkaRecord, WorkflowTriggered, encode, new_event, topics
from podium.runtime.kafka import make_consumer, make_producer
from podium.workflow.definition import Definition
from tests.e2e import random_dags
from tests.e2e.conftest import RANDOM_DAGS, Deployment
from tests.e2e.services import CALLS

pytestmark = pytest.mark.integration


def attempts_of(result, task):  # type: ignore[no-untyped-def]
    return result.tasks[task].attempts


async def test_fan_out_fan_in_and_data_passing(deployment: Deployment) -> None:
    result = await deployment.run("fanout", {"n": 10})
    assert result.state == "Succeeded"
    assert result.output == {"total": 36, "parts": [11, 12, 13]}
    assert {t: s.state for t, s in result.tasks.items()} == dict.fromkeys(
        ["split", "left", "mid", "right", "join"], "Succeeded"
    )


async def test_retry_with_backoff_then_success(deployment: Deployment) -> None:
    result = await deployment.run("retry", {"fail_times": 2})
    assert result.state == "Succeeded"
    assert attempts_of(result, "flaky") == 3


async def test_retries_exhausted_fail_the_workflow(deployment: Deployment) -> None:
    result = await deployment.run("retry", {"fail_times": 9})
    assert result.state == "Failed"
    assert result.tasks["flaky"].state == "Failed"
    assert attempts_of(result, "flaky") == 3
    assert result.error is not None and result.error.type == "RuntimeError"


async def test_attempt_timeout_counts_as_a_retryable_failure(deployment: Deployment) -> None:
    result = await deployment.run("attempt_timeout", {})
    assert result.state == "Succeeded"
    assert attempts_of(result, "slow") == 2
    assert result.tasks["slow"].output == {"task": "slow", "echo": "second"}


async def test_an_attempt_timeout_is_the_same_error_in_both_modes(deployment: Deployment) -> None:
    result = await deployment.run("timed_out", {})
    assert result.state == "Failed"
    timed_out = ErrorInfo(type="Timeout", message="attempt 2 timed out after 0.2s", retryable=True)
    assert (result.tasks["slow"].state, result.tasks["slow"].attempts) == ("Failed", 2)
    assert result.tasks["slow"].error == timed_out
    assert result.error == timed_out  # the workflow's error is its failing task's


@pytest.mark.parametrize("enrich", [False, True])
async def test_when_false_skips_and_dependents_see_it(deployment: Deployment, enrich: bool) -> None:
    result = await deployment.run("skip", {"enrich": enrich})
    assert result.state == "Succeeded"
    states = {t: s.state for t, s in result.tasks.items()}
    if enrich:
        assert states == dict.fromkeys(["first", "optional", "after", "strict"], "Succeeded")
        assert result.tasks["after"].output["echo"] == "Succeeded"
    else:
        assert states == {
            "first": "Succeeded",
            "optional": "Skipped",
            "after": "Succeeded",
            "strict": "Skipped",
        }
        assert result.tasks["after"].output["echo"] == "Skipped"


async def test_non_retryable_failure_is_not_retried(deployment: Deployment) -> None:
    result = await deployment.run("fatal", {})
    assert result.state == "Failed"
    assert result.tasks["doomed"].state == "Failed"
    assert attempts_of(result, "doomed") == 1
    assert result.tasks["never"].state == "Pending"
    assert result.error is not None and result.error.retryable is False


async def test_compensation_runs_in_reverse_completion_order(deployment: Deployment) -> None:
    workflow_id = await deployment.start("saga", {})
    result = await deployment.wait(workflow_id)
    assert result.state == "Compensated"
    assert result.tasks["c"].state == "Failed"
    undone = [task for wid, task, _, compensation in CALLS if wid == workflow_id and compensation]
    assert undone == ["b", "a"]


async def test_workflow_timeout(deployment: Deployment) -> None:
    result = await deployment.run("wf_timeout", {})
    assert result.state == "TimedOut"


async def test_bad_trigger_input_is_refused_before_publishing(deployment: Deployment) -> None:
    with pytest.raises(InputRejected, match="'n' is a required property"):
        await deployment.run("guarded", {"m": 1})
    result = await deployment.run("guarded", {"n": 5})
    assert result.state == "Succeeded"


async def test_garbage_on_a_command_topic_is_dead_lettered_and_work_goes_on(
    deployment: Deployment, kafka: str
) -> None:
    # the topic the mode's services consume: commands, or the outcomes they react to
    topic = (
        topics.commands("test.step")
        if deployment.mode == "orchestration"
        else topics.outcomes("test.step")
    )
    marker = uuid.uuid4().hex.encode()
    producer = make_producer(kafka)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=b"\x00garbage" + marker, key=b"wf-garbage")
    finally:
        await producer.stop()
    consumer = make_consumer(kafka, topics.DEAD_LETTER, group_id=None)
    await consumer.start()
    try:
        dead = None
        deadline = time.monotonic() + 30
        while dead is None:
            assert time.monotonic() < deadline, "the garbage record was never dead-lettered"
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500), 30)
            for records in batch.values():
                dead = next((r for r in records if r.value and marker in r.value), dead)
    finally:
        await consumer.stop()
    headers = dict(dead.headers)
    assert headers["podium_dlq_topic"] == topic.encode()
    assert b"missing CloudEvents header" in headers["podium_dlq_reason"]
    result = await deployment.run("fanout", {"n": 1})
    assert result.state == "Succeeded"


# -- triggers that cannot start: answered, dead-lettered, never run ----------------------


def _trigger(
    workflow_id: str, workflow: str, version: int, input: dict[str, Any], mode: str
) -> KafkaRecord:
    """A trigger as any producer could write it, `mode` included (it need not be valid)."""
    payload = WorkflowTriggered(workflow=workflow, version=version, input=input)
    record = encode(new_event(payload, source="a foreign producer", workflow_id=workflow_id))
    value = orjson.loads(record.value or b"")
    return KafkaRecord(record.key, orjson.dumps({**value, "mode": mode}), record.headers)


async def _publish(kafka: str, *records: tuple[bytes | None, KafkaRecord]) -> None:
    producer = make_producer(kafka)
    await producer.start()
    try:
        for key, record in records:
            await producer.send_and_wait(
                topics.TRIGGERS, value=record.value, key=key, headers=record.headers
            )
    finally:
        await producer.stop()


async def _dead_letters(kafka: str, workflow_ids: set[str]) -> dict[str, bytes]:
    """The dead-letter reason of a record of each of these workflow ids."""
    consumer = make_consumer(kafka, topics.DEAD_LETTER, group_id=None)
    await consumer.start()
    reasons: dict[str, bytes] = {}
    try:
        async with asyncio.timeout(30):
            while reasons.keys() != workflow_ids:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        headers = dict(record.headers)
                        workflow_id = headers.get("ce_workflowid", b"").decode()
                        if workflow_id in workflow_ids:
                            reasons[workflow_id] = headers["podium_dlq_reason"]
    finally:
        await consumer.stop()
    return reasons


async def test_a_trigger_that_cannot_start_is_answered_with_a_failed_end(
    deployment: Deployment, kafka: str
) -> None:
    mode = deployment.mode
    run = uuid.uuid4().hex[:8]
    cases = {  # workflow id: trigger, error type, message
        f"{run}-unknown": (("nope", 1, {}, mode), "UnknownWorkflow", "unknown workflow nope v1"),
        f"{run}-version": (("chain", 9, {}, mode), "UnknownWorkflow", "unknown workflow chain v9"),
        f"{run}-input": (("guarded", 1, {"m": 1}, mode), "InputError", "'n' is a required"),
        f"{run}-mode": (("chain", 1, {}, "bogus"), "InvalidTrigger", "mode: Input should be"),
    }
    ended = {workflow_id: deployment.client.expect(workflow_id) for workflow_id in cases}
    await _publish(kafka, *((w.encode(), _trigger(w, *t)) for w, (t, _, _) in cases.items()))
    for workflow_id, (trigger, error_type, message) in cases.items():
        result = await asyncio.wait_for(ended[workflow_id], 20)
        assert (result.state, result.workflow, result.tasks) == ("Failed", trigger[0], {})
        assert result.mode == (mode if trigger[3] == mode else "orchestration")
        assert result.error is not None and result.error.type == error_type
        assert message in result.error.message and result.error.retryable is False
    reasons = await _dead_letters(kafka, set(cases))
    assert b"unknown workflow nope v1" in reasons[f"{run}-unknown"]
    assert b"mode: Input should be" in reasons[f"{run}-mode"]
    assert not [call for call in CALLS if call[0] in cases]


async def test_a_trigger_keyed_other_than_by_its_id_is_dead_lettered_not_run(
    deployment: Deployment, kafka: str
) -> None:
    run = uuid.uuid4().hex[:8]
    null, other = f"{run}-null-key", f"{run}-other-key"
    await _publish(
        kafka,
        (None, _trigger(null, "fanout", 1, {"n": 1}, deployment.mode)),
        (b"someone-else", _trigger(other, "fanout", 1, {"n": 1}, deployment.mode)),
    )
    reasons = await _dead_letters(kafka, {null, other})
    assert reasons[null].startswith(b"no key where the workflow id")
    assert reasons[other].startswith(b"key 'someone-else' where the workflow id")
    assert (await deployment.run("fanout", {"n": 1})).state == "Succeeded"  # work goes on
    assert not [call for call in CALLS if call[0] in (null, other)]


@pytest.mark.parametrize("definition", RANDOM_DAGS, ids=lambda d: d.name)
async def test_random_dags_end_where_the_pure_core_says(
    deployment: Deployment, definition: Definition
) -> None:
    """Both modes, on the wire, reach the state the core reaches in memory.

    Where a task fails for good, sibling branches still running are abandoned at
    whatever point timing left them, so only the workflow state is compared.
    """
    state, tasks = random_dags.expected(definition)
    result = await deployment.run(definition.name, {})
    assert result.state == state
    if not random_dags.fails_for_good(definition):
        assert {t: (s.state, s.attempts) for t, s in result.tasks.items()} == tasks
