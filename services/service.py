"""`TaskService`: a named set of task handlers, registered explicitly.

```python
inventory = TaskService("inventory")

@inventory.task("inventory.reserve")
async def reserve(input: dict, ctx) -> dict: ...
```

Registering does nothing else: no consumer starts on import. The runtime
(`services.runtime`) runs one or more services in a process.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel

from podium.events import topics

Handler = Callable[..., Any] | Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler knows about the attempt it runs."""

    workflow_id: str
    task_id: str
    attempt: int
    idempotency_key: str
    command_id: str
    compensation: bool
    logger: logging.LoggerAdapter[logging.Logger]


@dataclass(frozen=True, slots=True)
class Registration:
    task_type: str
    handler: Handler
    is_async: bool
    #: a pydantic model the input is parsed into, from the handler's annotation
    input_model: type[BaseModel] | None


@dataclass
class TaskService:
    name: str
    handlers: dict[str, Registration] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problem = topics.name_problem(self.name, "service name")
        if problem is not None:
            raise ValueError(problem)

    def task(self, task_type: str) -> Callable[[Handler], Handler]:
        """Register the decorated function as the handler of `task_type`."""
        problem = topics.name_problem(task_type, "task type")
        if problem is not None:
            raise ValueError(problem)

        def register(handler: Handler) -> Handler:
            self.add(task_type, handler)
            return handler

        return register

    def add(self, task_type: str, handler: Handler) -> None:
        if task_type in self.handlers:
            raise ValueError(f"service {self.name!r} already handles {task_type!r}")
        self.handlers[task_type] = Registration(
            task_type=task_type,
            handler=handler,
            is_async=inspect.iscoroutinefunction(handler),
            input_model=_input_model(handler),
        )

    @property
    def task_types(self) -> list[str]:
        return sorted(self.handlers)


def _input_model(handler: Handler) -> type[BaseModel] | None:
    params = list(inspect.signature(handler).parameters.values())
    if not params:
        raise TypeError(f"handler {handler.__name__} must accept (input, ctx)")
    try:
        hints = get_type_hints(handler)
    except Exception:  # unresolvable annotations: treat the input as plain JSON
        return None
    hint = hints.get(params[0].name)
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return hint
    return None
