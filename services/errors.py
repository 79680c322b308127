"""Errors a task handler raises, and what they mean for the workflow.

    Exception                 any uncaught exception: a retryable failure
    └── TaskError             the handler's verdict; retryable=False stops retries

The service reports; the conductor (or, in choreography, the task's own retry
policy) decides what happens next.
"""

from __future__ import annotations


class TaskError(Exception):
    """A task failure with retry semantics: `TaskError("no stock", retryable=False)`."""

    def __init__(self, message: str, *, retryable: bool = True, type: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        #: the error type recorded in the outcome; defaults to the class name
        self.type = type or self.__class__.__name__
