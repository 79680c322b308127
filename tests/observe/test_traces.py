"""One workflow, one trace: a span per task attempt, whoever runs it, in both modes.

In one process on the in-memory bus: two task services (`steps`, `undo`), each
its own consumer group as in separate processes, beside a conductor or a
tracker; spans go to OpenTelemetry's in-memory exporter. The span of each
attempt is parented by the trace context its command or event carried; the
cross-process case (two service processes on tansu) is in `test_roles.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from podium import tracing
from podium.events import Mode, TaskCommand, new_event
from podium.events.envelope import workflow_trace_ids, workflow_traceparent
from podium.oneshot import run_once
from podium.runtime import memory
from podium.runtime.settings import Settings
from podium.workflow.loader import parse_definition
from tests.e2e import services as test_services

#: a flaky first task (two attempts), a fatal second one, the first one undone
TRACED = parse_definition(
    {
        "name": "traced",
        "version": 1,
        "on_failure": "compensate",
        "tasks": [
            {
                "id": "a",
                "type": "test.step",
                "input": {"fail_times": 1, "echo": "a"},
                "retry": {"max_attempts": 2, "backoff": "10ms"},
                "compensate": {"type": "test.undo", "input": {"undo": "a"}},
            },
            {"id": "b", "type": "test.step", "depends_on": ["a"], "input": {"fatal": True}},
        ],
    }
)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=tracing.WorkflowIds())  # type: ignore[arg-type]
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.install(None)
        provider.shutdown()


@pytest.mark.parametrize("mode", list(Mode))
async def test_a_workflow_is_one_trace_with_a_span_per_attempt(
    mode: Mode, spans: InMemorySpanExporter
) -> None:
    address = f"memory://{uuid.uuid4().hex}"
    try:
        workflow_id, ended = await run_once(
            TRACED,
            test_services.services,
            {},
            bootstrap_servers=address,
            settings=Settings(bootstrap_servers=address),
            mode=mode,
            timeout=30,
        )
    finally:
        memory.drop(address)
    assert ended.state == "Compensated"
    finished = [s for s in spans.get_finished_spans() if s.attributes is not None]
    trace_id, root_id = workflow_trace_ids(workflow_id)
    assert trace_id == int(workflow_id, 16)  # a generated id is its trace's id
    assert {s.context.trace_id for s in finished} == {trace_id}

    (root,) = [s for s in finished if s.parent is None]
    assert root.name == "workflow traced" and root.context.span_id == root_id
    assert root.attributes == {
        "podium.workflow.id": workflow_id,
        "podium.workflow.name": "traced",
        "podium.workflow.version": 1,
        "podium.mode": str(mode),
        "podium.workflow.state": "Compensated",
    }
    attempts = sorted(
        (
            s.attributes["podium.task.type"],
            s.attributes["podium.task.id"],
            s.attributes["podium.task.attempt"],
            s.attributes["podium.task.state"],
        )
        for s in finished
        if s is not root
    )
    assert attempts == [
        ("test.step", "a", 1, "Failed"),
        ("test.step", "a", 2, "Succeeded"),
        ("test.step", "b", 1, "Failed"),
        ("test.undo", "a", 1, "Succeeded"),
    ]
    for span in finished:
        if span is not root:  # parented by the context its command or event carried
            assert span.parent is not None and span.parent.span_id == root_id
            assert span.attributes["podium.mode"] == str(mode)
            assert root.start_time <= span.start_time <= span.end_time <= root.end_time


def test_without_a_provider_no_span_is_made_and_events_still_carry_the_trace() -> None:
    command = TaskCommand(
        workflow="w",
        version=1,
        command_id="c",
        task_id="t",
        task_type="x",
        attempt=1,
        input={},
        idempotency_key="k",
    )
    assert isinstance(tracing.attempt("wf-1", command, None), type(tracing._NOTHING))
    event = new_event(command, source="test", workflow_id="wf-1")
    assert event.traceparent == workflow_traceparent("wf-1")
    assert event.traceparent.startswith("00-") and event.traceparent.endswith("-01")
