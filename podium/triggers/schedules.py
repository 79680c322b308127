"""Cron schedules: one start per tick, whichever gateway processes run.

A processor on the runtime's loop in the group `podium.gateway.schedules`, whose
only input, `podium.schedules`, carries nothing: its partitions share the
schedules out. A definition's schedules belong to the partition its name hashes
to (Kafka's murmur2, as for a key), so exactly one member of the group fires them.

Per schedule the last tick handled (fired or skipped) is the state, written to the
compacted `podium.gateway.changelog` and restored by whoever owns the partition
next. A tick's start is a trigger under the id `<name>:cron:<index>:<tick>`: fired
twice, the second is a duplicate start, which starts nothing. So:

- a kill -9 between a tick's trigger and its snapshot fires the tick again on
  restart (a duplicate: nothing starts twice); a restore also re-sends the last
  fired tick when it is recent, in case its trigger was lost with the process;
- a tick that came due while no gateway ran follows the schedule's `missed`
  policy (`skip`, or `run_once`: one catch-up start) once it is more than
  `MISSED_GRACE_S` late; a later restart fires it as usual;
- a schedule seen for the first time starts from now: nothing before it fires.

`clock` replaces the wall clock for tests: ticks are decided at `clock()`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from aiokafka.partitioner import murmur2

from podium.events import CloudEvent, Mode, WorkflowTriggered, encode, new_event, topics
from podium.runtime.changelog import restore
from podium.runtime.loop import BaseProcessor, Loop, Spec
from podium.runtime.settings import Settings
from podium.workflow.catalog import Catalog
from podium.workflow.definition import Definition
from podium.workflow.triggers import (
    MISSED_GRACE_S,
    Trigger,
    due_ticks,
    next_ticks,
    schedule_id,
)

log = logging.getLogger("podium.triggers")

SOURCE = "podium/triggers"


@dataclass(frozen=True, slots=True)
class Schedule:
    definition: Definition
    index: int
    trigger: Trigger
    partition: int

    @property
    def key(self) -> str:
        return f"{self.definition.name}:cron:{self.index}"


def partition_of(name: str, partitions: int) -> int:
    """The partition a definition's schedules belong to (Kafka's default partitioner)."""
    hashed: int = murmur2(name.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def schedules_of(catalog: Catalog, partitions: int) -> list[Schedule]:
    """Every schedule of the latest version of each definition."""
    latest: dict[str, Definition] = {}
    for definition in catalog:
        known = latest.get(definition.name)
        if known is None or definition.version > known.version:
            latest[definition.name] = definition
    return [
        Schedule(definition, index, trigger, partition_of(definition.name, partitions))
        for definition in latest.values()
        for index, trigger in enumerate(definition.triggers)
        if trigger.cron is not None
    ]


class Scheduler(BaseProcessor):
    name = "triggers.schedules"
    group = "podium.gateway.schedules"

    def __init__(
        self,
        catalog: Catalog,
        bootstrap_servers: str,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.settings = settings
        self.mode: Mode = settings.mode
        self.clock = clock
        self.schedules = {s.key: s for s in schedules_of(catalog, settings.partitions)}
        #: owned schedules: the last tick handled, the last fired, the next one due
        self._last: dict[str, float] = {}
        self._fired: dict[str, float] = {}
        self._next: dict[str, float] = {}
        self.fired = 0
        spec = Spec(
            name=self.name,
            group=self.group,
            inputs=[topics.SCHEDULES],
            topics=[
                topics.SCHEDULES,
                topics.GATEWAY_CHANGELOG,
                topics.TRIGGERS,
                topics.DEAD_LETTER,
            ],
            changelog=topics.GATEWAY_CHANGELOG,
        )
        self.loop = Loop(spec, self, bootstrap_servers, settings)
        self.ready = self.loop.ready
        self._outbox = self.loop.outbox

    def stop(self) -> None:
        self.loop.stop()

    async def run(self) -> None:
        await self.loop.run()

    # -- time -----------------------------------------------------------------------

    def next_due(self) -> float | None:
        if not self._next:
            return None
        # in wall-clock time, however far the injected clock is from it
        return time.time() + (min(self._next.values()) - self.clock())

    def fire(self, now: float) -> None:
        now = self.clock()
        for key, due in list(self._next.items()):
            if due > now:
                continue
            schedule = self.schedules[key]
            ticks, handled = due_ticks(schedule.trigger, self._last[key], now)
            for tick in ticks:
                self._start(schedule, tick)
            self._last[key] = handled
            self._next[key] = next_ticks(schedule.trigger, max(handled, now))[0]
            self._outbox.changed(key, schedule.partition)

    def _start(self, schedule: Schedule, tick: float) -> None:
        definition = schedule.definition
        workflow_id = schedule_id(definition.name, schedule.index, tick)
        payload = WorkflowTriggered(
            workflow=definition.name,
            version=definition.version,
            input=dict(schedule.trigger.input),
            mode=self.mode,
        )
        event: CloudEvent = new_event(
            payload, source=SOURCE, workflow_id=workflow_id, id=f"{workflow_id}:trigger"
        )
        self._outbox.emit(topics.TRIGGERS, None, encode(event))
        self._fired[schedule.key] = tick
        self.fired += 1
        log.info("schedule %s fired tick %s as %s", schedule.key, tick, workflow_id)

    # -- state ----------------------------------------------------------------------

    def snapshot(self, key: str) -> bytes | None:
        if key not in self._last:
            return None
        return orjson.dumps({"last": self._last[key], "fired": self._fired.get(key)})

    async def restore(self, partitions: set[int]) -> None:
        owned = [s for s in self.schedules.values() if s.partition in partitions]
        if not owned:
            return
        restored = await restore(
            self.bootstrap_servers,
            topics.GATEWAY_CHANGELOG,
            {s.partition for s in owned},
            _tick_state,
            self.settings.consumer,
        )
        now = self.clock()
        for schedule in owned:
            key = schedule.key
            found = restored.get(key)
            if found is None:
                self._last[key] = now  # first seen: from now on
                self._outbox.changed(key, schedule.partition)
            else:
                self._last[key], fired = found[1]
                if fired is not None:
                    self._fired[key] = fired
                    if now - fired <= MISSED_GRACE_S:
                        self._start(schedule, fired)  # perhaps lost with the process
            self._next[key] = next_ticks(schedule.trigger, self._last[key])[0]
        await self.loop.seal_and_drain()

    def revoke(self, partitions: set[int]) -> None:
        for schedule in self.schedules.values():
            if schedule.partition in partitions:
                self._last.pop(schedule.key, None)
                self._fired.pop(schedule.key, None)
                self._next.pop(schedule.key, None)

    def next_fire_times(self, count: int = 3) -> dict[str, list[float]]:
        now = self.clock()
        return {key: next_ticks(s.trigger, now, count) for key, s in self.schedules.items()}

    # -- no Podium inputs ----------------------------------------------------------


def _tick_state(value: bytes) -> tuple[float, float | None]:
    """A schedule's changelog value: the last tick handled and the last fired (or None);
    ValueError when it is not one (the restore logs and skips it)."""
    state = orjson.loads(value)
    if not isinstance(state, dict):
        raise ValueError(f"not a schedule's state: {state!r:.80}")
    fired = state.get("fired")
    return float(state["last"]), None if fired is None else float(fired)
