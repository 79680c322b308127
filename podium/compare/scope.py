"""One mode's deployment for `podium compare`, apart from everything else on the broker.

A *scope* (`cmp<run>o` for orchestration, `cmp<run>c` for choreography) prefixes the
workflow's name, its task types and its service names, so each mode gets topics and
consumer groups of its own: fresh command and outcome topics, fresh service groups and
choreography changelogs, and a conductor or tracker in a group of its own with a changelog
of its own. The shared topics (triggers, workflow ends, dead letters) are read by every
scoped component, which ignores any workflow whose id is not of its scope; a live
deployment's conductor or tracker on the same broker sees the scoped triggers as unknown
workflows (it dead-letters them and runs nothing).

The user's handlers run wrapped by a `Probe`, which times them per workflow and, with a
fail rate, fails a fraction of the attempts (retryably), the same attempts in both modes.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from podium.conductor.conductor import Conductor, Tracker
from podium.events import CloudEvent, Mode, topics
from podium.runtime.component import Component
from podium.runtime.settings import Settings
from podium.services.participant import Participant
from podium.services.service import Registration, TaskService
from podium.services.worker import Worker
from podium.workflow.catalog import Catalog
from podium.workflow.definition import Definition


class InjectedFailure(RuntimeError):
    """The failure `--fail-rate` injects into an attempt (retryable, like any exception)."""


@dataclass
class Probe:
    """Handler time and calls per workflow id; fails `fail_rate` of the attempts."""

    fail_rate: float = 0.0
    handler_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fails(self, workflow_id: str, task_type: str, attempt: int) -> bool:
        """The same decision for the same run, task and attempt in both modes."""
        if self.fail_rate <= 0:
            return False
        run = workflow_id.rsplit("-", 1)[-1]
        return random.Random(f"{run}/{task_type}/{attempt}").random() < self.fail_rate

    def record(self, workflow_id: str, seconds: float) -> None:
        with self._lock:
            self.handler_s[workflow_id] += seconds
            self.calls[workflow_id] += 1

    def wrap(self, task_type: str, registration: Registration) -> Callable[..., Any]:
        handler = registration.handler
        if registration.is_async:

            async def run_async(value: Any, ctx: Any) -> Any:
                start = time.perf_counter()
                try:
                    if self.fails(ctx.workflow_id, task_type, ctx.attempt):
                        raise InjectedFailure(f"podium compare: injected failure ({task_type})")
                    return await handler(value, ctx)
                finally:
                    self.record(ctx.workflow_id, time.perf_counter() - start)

            return run_async

        def run_sync(value: Any, ctx: Any) -> Any:
            start = time.perf_counter()
            try:
                if self.fails(ctx.workflow_id, task_type, ctx.attempt):
                    raise InjectedFailure(f"podium compare: injected failure ({task_type})")
                return handler(value, ctx)
            finally:
                self.record(ctx.workflow_id, time.perf_counter() - start)

        return run_sync


@dataclass(frozen=True)
class Scope:
    """What one mode's deployment is called: `prefix` names its types, services and ids."""

    prefix: str
    mode: Mode

    def name(self, original: str) -> str:
        return f"{self.prefix}.{original}"

    def workflow_id(self, tag: str) -> str:
        return f"{self.prefix}-{tag}"

    def owns(self, workflow_id: str) -> bool:
        return workflow_id.startswith(f"{self.prefix}-")

    def definition(self, definition: Definition) -> Definition:
        """The definition with its name and every task and compensation type prefixed."""
        raw = definition.model_dump(exclude_none=True)
        raw["name"] = self.name(definition.name)
        for task in raw["tasks"]:
            task["type"] = self.name(task["type"])
            if task.get("compensate"):
                task["compensate"]["type"] = self.name(task["compensate"]["type"])
        return Definition.model_validate(raw)

    def services(self, services: list[TaskService], probe: Probe) -> list[TaskService]:
        """The services renamed, their handlers registered under the prefixed types, probed."""
        scoped = []
        for service in services:
            copy = TaskService(self.name(service.name))
            for task_type, registration in service.handlers.items():
                new_type = self.name(task_type)
                copy.handlers[new_type] = Registration(
                    task_type=new_type,
                    handler=probe.wrap(task_type, registration),
                    is_async=registration.is_async,
                    input_model=registration.input_model,
                )
            scoped.append(copy)
        return scoped

    def parts(
        self,
        catalog: Catalog,
        services: list[TaskService],
        bootstrap: str,
        settings: Settings,
        keep: Callable[[str], bool] = lambda role: True,
    ) -> list[Component]:
        """The deployment: workers and a conductor, or participants and a tracker; only the
        roles `keep` accepts are built (a part holds clients from its construction on)."""
        kept = [s for s in services if keep(self.role(s.name))]
        if self.mode == Mode.CHOREOGRAPHY:
            participants: list[Component] = [
                _ScopedParticipant(self, s, catalog, bootstrap, settings) for s in kept
            ]
            if not keep("tracker"):
                return participants
            return [*participants, _ScopedTracker(self, catalog, bootstrap, settings)]
        workers: list[Component] = [Worker(s, bootstrap, settings) for s in kept]
        if not keep("conductor"):
            return workers
        return [*workers, _ScopedConductor(self, catalog, bootstrap, settings)]

    def role(self, scoped_name: str) -> str:
        """A scoped service's name as the user wrote it."""
        return scoped_name.removeprefix(f"{self.prefix}.")


class _ScopedConductor(Conductor):
    def __init__(self, scope: Scope, catalog: Catalog, bootstrap: str, settings: Settings) -> None:
        # instance attributes shadow the class's: a group and a changelog of the scope's own
        self.group = f"podium.compare.{scope.prefix}.{self.name}"
        self.changelog = topics.compare_changelog(scope.prefix, self.name)
        self.scope = scope
        super().__init__(catalog, bootstrap, settings)

    def route(self, partition: int, event: CloudEvent, now: float) -> None:
        if self.scope.owns(event.workflowid):
            super().route(partition, event, now)


class _ScopedTracker(Tracker):
    def __init__(self, scope: Scope, catalog: Catalog, bootstrap: str, settings: Settings) -> None:
        self.group = f"podium.compare.{scope.prefix}.{self.name}"
        self.changelog = topics.compare_changelog(scope.prefix, self.name)
        self.scope = scope
        super().__init__(catalog, bootstrap, settings)

    def route(self, partition: int, event: CloudEvent, now: float) -> None:
        if self.scope.owns(event.workflowid):
            super().route(partition, event, now)


class _ScopedParticipant(Participant):
    def __init__(
        self,
        scope: Scope,
        service: TaskService,
        catalog: Catalog,
        bootstrap: str,
        settings: Settings,
    ) -> None:
        self.scope = scope
        super().__init__(service, catalog, bootstrap, settings)

    def route(self, partition: int, event: CloudEvent, now: float) -> None:
        if self.scope.owns(event.workflowid):
            super().route(partition, event, now)


async def start(parts: list[Component]) -> list[asyncio.Task[None]]:
    """Run the parts; return once every one has its partitions (raise if one stops first)."""
    tasks = [asyncio.create_task(part.run()) for part in parts]
    ready = [asyncio.create_task(part.ready.wait()) for part in parts]
    pending: set[asyncio.Future[Any]] = {*ready, *tasks}
    while any(not r.done() for r in ready):
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for finished in done:
            if finished in tasks:
                finished.result()
                raise RuntimeError("a component stopped before it was ready")
    return tasks


async def stop(parts: list[Component], tasks: list[asyncio.Task[None]]) -> None:
    for part in parts:
        part.stop()
    await asyncio.gather(*tasks, return_exceptions=True)
