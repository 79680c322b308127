"""Run one attempt of one task: the handler call and its outcome, no Kafka.

Both modes call this: the orchestration worker for a command it consumed, the
choreography participant for a task it found ready. Each attempt is one span
(`podium.tracing`), its log lines name its workflow and task (`podium.logs`),
and its times go to the metrics (`podium.metrics`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from concurrent.futures import Executor
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from podium import logs, metrics, tracing
from podium.events import (
    CloudEvent,
    ErrorInfo,
    TaskCommand,
    TaskFailed,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
    new_event,
)
from podium.services.errors import TaskError
from podium.services.service import Context, Registration
from podium.workflow.failures import attempt_timed_out

log = logging.getLogger("podium.service")


#: the largest output a handler may return, serialised. An outcome is one Kafka record, and a
#: record over the producer's 1 MiB request limit never reaches the broker; the conductor's
#: state snapshot and the workflow's end event carry every output again, hence well below it
MAX_OUTPUT_BYTES = 256 * 1024


async def execute(
    registration: Registration,
    command: TaskCommand,
    workflow_id: str,
    executor: Executor | None = None,
    *,
    max_output_bytes: int = MAX_OUTPUT_BYTES,
    traceparent: str | None = None,
    queued_since: float | None = None,
) -> TaskSucceeded | TaskFailed:
    """Call the handler for `command`; never raises for what the handler does.

    `traceparent`: the trace context of the event that caused the attempt (default:
    the workflow's); `queued_since`: when it was asked for (epoch seconds), for the
    queueing time.
    """
    began = time.time()
    with logs.context(workflow_id, command.task_id):
        with tracing.attempt(workflow_id, command, traceparent) as span:
            outcome = await _attempt(registration, command, workflow_id, executor, max_output_bytes)
            tracing.ended(span, outcome)
        queued = None if queued_since is None else began - queued_since
        succeeded = isinstance(outcome, TaskSucceeded)
        metrics.attempt(command.task_type, command.mode, succeeded, time.time() - began, queued)
    return outcome


async def _attempt(
    registration: Registration,
    command: TaskCommand,
    workflow_id: str,
    executor: Executor | None,
    max_output_bytes: int,
) -> TaskSucceeded | TaskFailed:
    ctx = Context(
        workflow_id=workflow_id,
        task_id=command.task_id,
        attempt=command.attempt,
        idempotency_key=command.idempotency_key,
        command_id=command.command_id,
        compensation=command.compensation,
        logger=logging.LoggerAdapter(log, {"workflow_id": workflow_id, "task_id": command.task_id}),
    )
    try:
        value = _parse(registration, command.input)
        output = await asyncio.wait_for(_call(registration, value, ctx, executor), command.timeout)
        return _succeeded(command, _to_json(output, max_output_bytes))
    except TaskError as exc:
        return failure(command, exc.type, exc.message, exc.retryable)
    except ValidationError as exc:
        return failure(command, "InputValidationError", str(exc), retryable=False)
    except TimeoutError:  # the same error the conductor's timer gives in orchestration
        error = attempt_timed_out(command.attempt, command.timeout)
        return failure(command, error["type"], error["message"], error["retryable"])
    except _NotJSON as exc:
        return failure(command, "OutputNotSerializable", str(exc), retryable=False)
    except _TooLarge as exc:
        return failure(command, "OutputTooLarge", str(exc), retryable=False)
    except Exception as exc:
        return failure(command, type(exc).__name__, str(exc) or repr(exc), retryable=True)


def _parse(registration: Registration, raw: Any) -> Any:
    if registration.input_model is None:
        return raw
    return registration.input_model.model_validate(raw)


async def _call(
    registration: Registration, value: Any, ctx: Context, executor: Executor | None
) -> Any:
    if registration.is_async:
        return await registration.handler(value, ctx)
    loop = asyncio.get_running_loop()
    # the thread sees the attempt's log context and span, as an async handler does
    run = contextvars.copy_context().run
    return await loop.run_in_executor(executor, run, registration.handler, value, ctx)


class _NotJSON(Exception):
    pass


class _TooLarge(Exception):
    pass


def _to_json(output: Any, limit: int) -> Any:
    try:
        encoded = orjson.dumps(
            output.model_dump(mode="json") if isinstance(output, BaseModel) else output
        )
    except TypeError as exc:
        raise _NotJSON(f"handler output is not JSON-serialisable: {exc}") from None
    if len(encoded) > limit:
        # retrying would produce the same output: a prompt, final failure that says why
        raise _TooLarge(
            f"handler output is {len(encoded):,} bytes serialised, over the limit of "
            f"{limit:,} bytes for one outcome record (PODIUM_MAX_OUTPUT_BYTES)"
        )
    return orjson.loads(encoded)


def _common(command: TaskCommand) -> dict[str, Any]:
    """The fields an outcome repeats from its command."""
    return {
        "workflow": command.workflow,
        "version": command.version,
        "command_id": command.command_id,
        "task_id": command.task_id,
        "task_type": command.task_type,
        "attempt": command.attempt,
        "compensation": command.compensation,
        "mode": command.mode,
    }


def outcome_event(
    payload: TaskStarted | TaskSucceeded | TaskFailed | TaskSkipped,
    workflow_id: str,
    source: str,
    cause: CloudEvent | None = None,
) -> CloudEvent:
    """A service's event about one attempt; its id, `<command id>:<started|succeeded|...>`,
    is the same on every redelivery, so readers can deduplicate by it."""
    kind = payload.event_type.rsplit(".", 1)[-1]
    return new_event(
        payload,
        source=source,
        workflow_id=workflow_id,
        id=f"{payload.command_id}:{kind}",
        task_id=payload.task_id,
        attempt=payload.attempt,
        correlation_id=cause.correlationid if cause else None,
        causation_id=cause.id if cause else None,
        traceparent=cause.traceparent if cause else None,
    )


def started(command: TaskCommand, *, with_input: bool = False) -> TaskStarted:
    """The marker a service publishes (and waits for) before it runs the handler;
    `with_input` when no command event carries the input (choreography)."""
    return TaskStarted(**_common(command), input=command.input if with_input else None)


def _succeeded(command: TaskCommand, output: Any) -> TaskSucceeded:
    return TaskSucceeded(**_common(command), output=output)


def failure(command: TaskCommand, type_: str, message: str, retryable: bool) -> TaskFailed:
    error = ErrorInfo(type=type_, message=message, retryable=retryable)
    return TaskFailed(**_common(command), error=error)
