"""Log lines that say which workflow and task they are about.

The runtime sets the workflow and task of the event it is handling, and a
service those of the attempt it is running (`context`, `bind`); a filter on the
handler copies them onto every record, whichever logger wrote it (a handler's
own `logging.getLogger(...)` too). On a terminal the lines are text; otherwise
(a container, a file, a pipe) one JSON object per line:

    {"time": "2026-01-02T03:04:05.678Z", "level": "INFO", "logger": "podium.service",
     "message": "...", "workflow_id": "...", "task_id": "..."}

`trace_id` and `span_id` are added inside a traced task attempt (`podium.tracing`).
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from typing import IO, Any

import orjson

from podium import tracing

_workflow: ContextVar[str | None] = ContextVar("podium_workflow_id", default=None)
_task: ContextVar[str | None] = ContextVar("podium_task_id", default=None)

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class context:  # lower case: used like a function, `with logs.context(workflow_id):`
    """Log lines written inside are about this workflow (and task). (A class, not a
    generator: it runs around every event a role handles.)"""

    __slots__ = ("_task_token", "_workflow_token", "task_id", "workflow_id")

    def __init__(self, workflow_id: str | None, task_id: str | None = None) -> None:
        self.workflow_id = workflow_id
        self.task_id = task_id

    def __enter__(self) -> None:
        self._workflow_token = _workflow.set(self.workflow_id)
        self._task_token = _task.set(self.task_id)

    def __exit__(self, *exc: object) -> None:
        _task.reset(self._task_token)
        _workflow.reset(self._workflow_token)


def bind(workflow_id: str | None, task_id: str | None = None) -> None:
    """Like `context`, for the rest of the current asyncio task (its own copy of the context)."""
    _workflow.set(workflow_id)
    _task.set(task_id)


class ContextFilter(logging.Filter):
    """Puts the workflow and task ids in force (and the trace, inside a span) on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "workflow_id", None) is None:
            record.workflow_id = _workflow.get()
        if getattr(record, "task_id", None) is None:
            record.task_id = _task.get()
        ids = tracing.current_ids()
        if ids is not None:
            record.trace_id, record.span_id = ids
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ids only when the line has them."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("workflow_id", "task_id", "trace_id", "span_id"):
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """The plain format, followed by the workflow and task the line is about."""

    def __init__(self) -> None:
        super().__init__(TEXT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        workflow_id = getattr(record, "workflow_id", None)
        if workflow_id is None:
            return text
        task_id = getattr(record, "task_id", None)
        return f"{text} [workflow {workflow_id}" + (f" task {task_id}]" if task_id else "]")


def handler(stream: IO[str] | None = None) -> logging.Handler:
    """A stderr handler: text on a terminal, JSON lines otherwise; ids on every record."""
    stream = stream or sys.stderr
    out = logging.StreamHandler(stream)
    tty = getattr(stream, "isatty", None)
    out.setFormatter(TextFormatter() if tty is not None and tty() else JsonFormatter())
    out.addFilter(ContextFilter())
    return out


def configure(level: str = "INFO") -> None:
    """Root logging to stderr (a no-op when the root logger has handlers already)."""
    level = level.upper()
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else logging.INFO,
        handlers=[handler()],
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the history store logs its own
