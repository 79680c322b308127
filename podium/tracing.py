"""OpenTelemetry traces: one trace per workflow, one span per task attempt.

Every event of a workflow carries the same W3C `traceparent`
(`podium.events.envelope.workflow_traceparent`): its trace id comes from the
workflow id (the id itself when it is 32 hex digits, as generated ids are), its
parent span id names the workflow's span. So whoever runs an attempt, in either
mode and in any process, parents the attempt's span from the event alone, and
the conductor (orchestration) or the tracker (choreography) sends the workflow's
span, with those ids, when the workflow ends.

Nothing is set up unless `OTEL_TRACES_EXPORTER` names an exporter (`console`,
`otlp`; `configure_from_env`, called by the CLI) or an application installs a
tracer provider of its own; until then an attempt costs one check and no span is
made. The other standard variables apply as usual (`OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_EXPORTER_OTLP_*`,
`OTEL_BSP_*`).
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import ProxyTracerProvider, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from podium.events.envelope import workflow_trace_ids, workflow_traceparent
from podium.events.payloads import TaskCommand, TaskFailed, TaskSucceeded

SCOPE = "podium"
#: exporters `OTEL_TRACES_EXPORTER` may name
EXPORTERS = ("console", "otlp")

_PROPAGATOR = TraceContextTextMapPropagator()
_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()
_UNKNOWN = object()
#: the provider last asked, and its tracer (a provider makes a new one per call)
_cached: tuple[trace.TracerProvider, trace.Tracer] | None = None
#: the provider Podium's spans go to (None: the global one, if any is set)
_provider: trace.TracerProvider | None = None
#: (trace id, span id) the next root span takes: the workflow's own
_forced: ContextVar[tuple[int, int] | None] = ContextVar("podium_forced_ids", default=None)


class TracingError(Exception):
    """`OTEL_TRACES_EXPORTER` names an exporter that is unknown or not installed."""


class WorkflowIds:
    """The SDK's id generator (random ids), except for a workflow's span, whose ids its
    events already carry. (Duck-typed: the SDK is imported only when tracing is set up.)"""

    def generate_trace_id(self) -> int:
        forced = _forced.get()
        return forced[0] if forced is not None else random.getrandbits(128) or 1

    def generate_span_id(self) -> int:
        forced = _forced.get()
        return forced[1] if forced is not None else random.getrandbits(64) or 1

    def is_trace_id_random(self) -> bool:
        return True


def install(provider: trace.TracerProvider | None) -> None:
    """Send Podium's spans to `provider` (None: back to the global provider, if any)."""
    global _provider
    _provider = provider


def _current_provider() -> trace.TracerProvider | None:
    """The provider Podium's spans go to; None (at the cost of two reads) when nobody set
    one up, in which case no span is made at all."""
    if _provider is not None:
        return _provider
    if getattr(trace, "_TRACER_PROVIDER", _UNKNOWN) is None:
        return None  # the API's own record that no global provider was set: the hot path
    provider = trace.get_tracer_provider()
    return None if isinstance(provider, ProxyTracerProvider) else provider


def _tracer() -> trace.Tracer | None:
    global _cached
    provider = _current_provider()
    if provider is None:
        return None
    if _cached is None or _cached[0] is not provider:
        _cached = (provider, provider.get_tracer(SCOPE))
    return _cached[1]


def configure_from_env(service_name: str) -> bool:
    """Set up the SDK from the `OTEL_*` variables; False when no exporter is named."""
    names = [
        name.strip()
        for name in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",")
        if name.strip() and name.strip() != "none"
    ]
    if not names or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporters = [_exporter(name) for name in names]
    named = OTELResourceDetector().detect().attributes.get("service.name")
    resource = Resource.create({} if named else {"service.name": service_name})
    provider = TracerProvider(resource=resource, id_generator=WorkflowIds())  # type: ignore[arg-type]
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # a handler's own spans nest under its attempt's
    install(provider)
    return True


def _exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        # stderr, one span per line: stdout carries results (`podium run --json`)
        return ConsoleSpanExporter(
            out=sys.stderr, formatter=lambda span: span.to_json(indent=None) + "\n"
        )
    if name == "otlp":
        protocol = os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        )
        package = "grpc" if protocol == "grpc" else "http"
        try:
            if package == "grpc":
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                    OTLPSpanExporter,
                )
            else:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )
        except ImportError:
            raise TracingError(
                f"OTEL_TRACES_EXPORTER=otlp ({protocol}) needs "
                f"opentelemetry-exporter-otlp-proto-{package} (pip install 'podium[otlp]' "
                "for http/protobuf)"
            ) from None
        return OTLPSpanExporter()
    raise TracingError(
        f"OTEL_TRACES_EXPORTER names {name!r}: Podium knows {', '.join(EXPORTERS)} and none"
    )


def attempt(
    workflow_id: str, command: TaskCommand, traceparent: str | None
) -> contextlib.AbstractContextManager[trace.Span | None]:
    """The span of one task attempt, around its handler, parented by the event that caused
    it (every event of a workflow carries the workflow's context)."""
    tracer = _tracer()
    if tracer is None:
        return _NOTHING
    return _attempt(tracer, workflow_id, command, traceparent)


@contextlib.contextmanager
def _attempt(
    tracer: trace.Tracer, workflow_id: str, command: TaskCommand, traceparent: str | None
) -> Iterator[trace.Span]:
    carrier = {"traceparent": traceparent or workflow_traceparent(workflow_id)}
    parent = _PROPAGATOR.extract(carrier)
    kind = "compensate" if command.compensation else "task"
    attributes: dict[str, str | int | bool] = {
        "podium.workflow.id": workflow_id,
        "podium.workflow.name": command.workflow,
        "podium.workflow.version": command.version,
        "podium.mode": str(command.mode),
        "podium.task.id": command.task_id,
        "podium.task.type": command.task_type,
        "podium.task.attempt": command.attempt,
        "podium.task.compensation": command.compensation,
        "podium.command.id": command.command_id,
    }
    with tracer.start_as_current_span(
        f"{kind} {command.task_id}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span


def ended(span: trace.Span | None, outcome: TaskSucceeded | TaskFailed) -> None:
    """Mark an attempt's span with how it ended."""
    if span is None:
        return
    if isinstance(outcome, TaskFailed):
        span.set_attribute("podium.task.state", "Failed")
        span.set_attribute("error.type", outcome.error.type)
        span.set_attribute("podium.error.retryable", outcome.error.retryable)
        span.set_status(Status(StatusCode.ERROR, outcome.error.message))
    else:
        span.set_attribute("podium.task.state", "Succeeded")


def workflow_span(
    workflow_id: str,
    name: str,
    version: int,
    mode: str,
    state: str,
    started_at: float | None,
    ended_at: float | None,
) -> None:
    """Send an ended workflow's span, the root of its trace, with the ids its events carry.

    Only a provider with `WorkflowIds` can give a span chosen ids (the one
    `configure_from_env` sets up does); with another, no workflow span is sent and
    the attempts' spans share a parent that is not exported.
    """
    provider = _current_provider()
    if provider is None or not isinstance(getattr(provider, "id_generator", None), WorkflowIds):
        return
    if started_at is None or ended_at is None:
        return
    token = _forced.set(workflow_trace_ids(workflow_id))
    try:
        tracer = _tracer()
        assert tracer is not None
        span = tracer.start_span(
            f"workflow {name}",
            context=Context(),
            start_time=int(started_at * 1e9),
            attributes={
                "podium.workflow.id": workflow_id,
                "podium.workflow.name": name,
                "podium.workflow.version": version,
                "podium.mode": mode,
                "podium.workflow.state": state,
            },
        )
    finally:
        _forced.reset(token)
    if state != "Succeeded":
        span.set_status(Status(StatusCode.ERROR, state))
    span.end(end_time=int(ended_at * 1e9))


def current_ids() -> tuple[str, str] | None:
    """The trace and span id of the span in force, as hex (for log lines), or None."""
    if _current_provider() is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"
