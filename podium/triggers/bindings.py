"""Event bindings: a record of a bound topic that passes its filter starts a workflow.

A processor on the runtime's loop, in a consumer group of its own
(`podium.gateway.events`) that starts at the end of a topic it has no committed
offset for. Its records are not Podium's events: the loop hands them over
undecoded (`Spec.foreign`). For each binding of the record's topic:

- the filter is false: counted (`filtered`), nothing starts;
- the filter, the input or the id fails to evaluate, or the input fails the
  definition's `input_schema`: the record goes to the dead-letter topic with the
  reason (`dead_lettered`);
- else a `workflow.triggered` goes to `podium.triggers` (`matched`) under the id the
  binding's `id:` gives, or, without one, `<name>:<topic>:<partition>:<offset>`: a
  record read again (the same record sent again, with `id:`) starts nothing new.

The loop commits the record's offset once the trigger is acknowledged. Each outcome
is counted per binding (`counts`) and in `podium_binding_records_total`.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from podium import metrics
from podium.events import (
    CloudEvent,
    DecodeError,
    Mode,
    WorkflowTriggered,
    encode,
    new_event,
    topics,
)
from podium.runtime.kafka import raw_record
from podium.runtime.loop import BaseProcessor, Loop, Spec
from podium.runtime.settings import Settings
from podium.triggers.records import event_of
from podium.workflow.catalog import Catalog
from podium.workflow.definition import Definition
from podium.workflow.expressions import Activation, ExpressionError
from podium.workflow.triggers import EventBinding

log = logging.getLogger("podium.triggers")

SOURCE = "podium/triggers"


@dataclass(frozen=True, slots=True)
class Binding:
    definition: Definition
    index: int
    spec: EventBinding

    @property
    def label(self) -> str:
        return f"{self.definition.name}#{self.index}"


def bindings_of(catalog: Catalog) -> list[Binding]:
    return [
        Binding(definition, index, trigger.event)
        for definition in catalog
        for index, trigger in enumerate(definition.triggers)
        if trigger.event is not None
    ]


class Refusal(Exception):
    """Why a matching record starts nothing: the dead letter's reason."""


class Binder(BaseProcessor):
    """Starts workflows from records of the bound topics."""

    name = "triggers.events"
    group = "podium.gateway.events"

    def __init__(self, catalog: Catalog, bootstrap_servers: str, settings: Settings) -> None:
        self.mode: Mode = settings.mode
        self._by_topic: dict[str, list[Binding]] = {}
        for binding in bindings_of(catalog):
            self._by_topic.setdefault(binding.spec.topic, []).append(binding)
        #: per binding label: matched, filtered, dead_lettered
        self.counts: dict[str, Counter[str]] = {
            b.label: Counter() for bs in self._by_topic.values() for b in bs
        }
        bound = sorted(self._by_topic)
        spec = Spec(
            name=self.name,
            group=self.group,
            inputs=bound,
            topics=[*bound, topics.TRIGGERS, topics.DEAD_LETTER, topics.GATEWAY_CHANGELOG],
            changelog=topics.GATEWAY_CHANGELOG,
            foreign=frozenset(bound),
            take=self.take,
            from_end=True,
        )
        self.loop = Loop(spec, self, bootstrap_servers, settings)
        self.ready = self.loop.ready
        self._outbox = self.loop.outbox

    @property
    def topics(self) -> list[str]:
        return sorted(self._by_topic)

    def stop(self) -> None:
        self.loop.stop()

    async def run(self) -> None:
        await self.loop.run()

    async def restore(self, partitions: set[int]) -> None:
        """Pin where the group starts on a bound partition it has no offset for: its
        end now, committed at once. Left to the consumer's reset, a record that came
        after this member was positioned but before its first commit would be skipped
        by the next owner (after a crash or a rebalance), which resets to a later end."""
        consumer = self.loop.consumer
        start: dict[TopicPartition, int] = {}
        for topic in self.topics:
            for partition in partitions & (consumer.partitions_for_topic(topic) or set()):
                tp = TopicPartition(topic, partition)
                if await consumer.committed(tp) is None:
                    start[tp] = await consumer.position(tp)
        if start:
            await consumer.commit(start)
            log.info("bound partitions start at their end: %s", sorted(map(str, start)))

    # -- one record -----------------------------------------------------------------

    def take(self, record: ConsumerRecord[bytes, bytes], now: float) -> None:
        bindings = self._by_topic.get(record.topic, ())
        if not bindings:
            return
        activation = Activation({"event": event_of(record)})
        for binding in bindings:
            counts = self.counts[binding.label]
            try:
                trigger = self._trigger(binding, activation, record)
            except Exception as why:  # a Refusal, or anything else: one record stops nothing
                if not isinstance(why, Refusal):
                    log.exception("binding %s cannot take a record", binding.label)
                counts["dead_lettered"] += 1
                metrics.binding_record(binding.label, "dead_lettered")
                reason = f"binding {binding.label} ({binding.spec.topic}): {why}"
                self._outbox.dead_letter(DecodeError(reason, raw_record(record)))
                continue
            if trigger is None:
                counts["filtered"] += 1
                metrics.binding_record(binding.label, "filtered")
                continue
            counts["matched"] += 1
            metrics.binding_record(binding.label, "matched")
            self._outbox.emit(topics.TRIGGERS, None, encode(trigger))

    def _trigger(
        self, binding: Binding, activation: Activation, record: ConsumerRecord[bytes, bytes]
    ) -> CloudEvent | None:
        """The trigger a record gives (None: filtered out); `Refusal` says why none."""
        definition = binding.definition
        condition, mapping, identity = binding.spec.compiled()
        try:
            if condition is not None and condition.evaluate(activation) is not True:
                return None
            workflow_input: Any = mapping.render(activation)
            workflow_id = identity.render(activation) if identity is not None else None
        except ExpressionError as error:
            raise Refusal(str(error)) from None
        if identity is None:
            workflow_id = f"{definition.name}:{record.topic}:{record.partition}:{record.offset}"
        elif (
            not isinstance(workflow_id, str | int)
            or isinstance(workflow_id, bool)
            or workflow_id == ""
        ):
            raise Refusal(f"id {workflow_id!r} is not a workflow id (a non-empty string)")
        if not isinstance(workflow_input, dict):
            raise Refusal("input does not map to an object")
        problems = definition.input_errors(workflow_input)
        if problems:
            raise Refusal(f"input rejected for {definition.name}: {'; '.join(problems)}")
        payload = WorkflowTriggered(
            workflow=definition.name,
            version=definition.version,
            input=workflow_input,
            mode=self.mode,
        )
        return new_event(payload, source=SOURCE, workflow_id=str(workflow_id))
