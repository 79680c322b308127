"""The error types a result carries, the same in both modes: one vocabulary.

An attempt's error is ``{"type", "message", "retryable"}``. A workflow's error is
the error of the task that failed it, with that task's id (``task_id``), or an
error of the workflow itself (``task_id`` None, not retryable). Where both modes
can produce an error (an attempt's timeout: the conductor's timer, or the
service's own limit on the handler), it is built here, once. The README's
"Errors" table lists every type.
"""

from __future__ import annotations

from typing import Any

__all__ = ["INPUT_ERROR", "INVALID_TRIGGER", "TIMEOUT", "UNKNOWN_WORKFLOW", "attempt_timed_out"]

#: an attempt ran past its task's ``timeout``
TIMEOUT = "Timeout"
#: a trigger's input does not match the definition's ``input_schema``
INPUT_ERROR = "InputError"
#: a trigger names a workflow (or version) the deployment does not know
UNKNOWN_WORKFLOW = "UnknownWorkflow"
#: a trigger that cannot be read or acted on (a bad mode, a missing field...)
INVALID_TRIGGER = "InvalidTrigger"


def attempt_timed_out(attempt: int, limit: float | None) -> dict[str, Any]:
    """The error of an attempt past its timeout: retryable, like any transient failure."""
    return {
        "type": TIMEOUT,
        "message": f"attempt {attempt} timed out after {limit or 0:g}s",
        "retryable": True,
    }
