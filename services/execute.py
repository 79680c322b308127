"""Run one attempt of one task: the handler call and its outcome, no Kafka.

Both modes call this: the orchestration worker for a command it consumed, the
choreography participant for a task it found ready.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from events import ErrorInfo, TaskCommand, TaskFailed, TaskSucceeded
from services.errors import TaskError
from services.service import Context, Registration

log = logging.getLogger("podium.service")


async def execute(
    registration: Registration,
    command: TaskCommand,
    workflow_id: str,
    executor: Executor | None = None,
) -> TaskSucceeded | TaskFailed:
    """Call the handler for `command`; never raises for what the handler does."""
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
        return _succeeded(command, _to_json(output))
    except TaskError as exc:
        return failure(command, exc.type, exc.message, exc.retryable)
    except ValidationError as exc:
        return failure(command, "InputValidationError", str(exc), retryable=False)
    except TimeoutError:
        return failure(command, "TimeoutError", f"attempt exceeded {command.timeout}s", True)
    except _NotJSON as exc:
        return failure(command, "OutputNotSerializable", str(exc), retryable=False)
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
    return await loop.run_in_executor(executor, registration.handler, value, ctx)


class _NotJSON(Exception):
    pass


def _to_json(output: Any) -> Any:
    if isinstance(output, BaseModel):
        return output.model_dump(mode="json")
    try:
        return orjson.loads(orjson.dumps(output))
    except TypeError as exc:
        raise _NotJSON(f"handler output is not JSON-serialisable: {exc}") from None


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


def _succeeded(command: TaskCommand, output: Any) -> TaskSucceeded:
    return TaskSucceeded(**_common(command), output=output)


def failure(command: TaskCommand, type_: str, message: str, retryable: bool) -> TaskFailed:
    error = ErrorInfo(type=type_, message=message, retryable=retryable)
    return TaskFailed(**_common(command), error=error)
