"""What a stateful consumer owes the broker after a batch: snapshots and events.

The conductor, the tracker and the choreography participants all work the same
way: handling records changes some keyed states and produces events; the batch
ends by sending one snapshot per changed key to the changelog (co-partitioned:
the partition the state lives on) and every event, without waiting. The ack
futures go to `AckedCommits`, which commits the input once they are all in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from podium import logs, metrics
from podium.events import CloudEvent, DecodeError, KafkaRecord, RawRecord, dead_letter, decode
from podium.runtime.commits import AckedCommits
from podium.runtime.kafka import Producer, raw_record
from podium.runtime.membership import Membership

log = logging.getLogger("podium.outbox")


class Outbox:
    def __init__(self, producer: Producer, changelog: str) -> None:
        self.producer = producer
        self.changelog = changelog
        self._events: list[tuple[str, int | None, KafkaRecord]] = []
        self._changed: dict[str, int] = {}

    def emit(self, topic: str, partition: int | None, record: KafkaRecord) -> None:
        self._events.append((topic, partition, record))

    def changed(self, key: str, partition: int) -> None:
        """The state under `key` changed: its snapshot goes out with the batch."""
        self._changed[key] = partition

    def delete(self, key: str, partition: int) -> None:
        """A tombstone for `key`: a compacting broker drops its snapshots, restore skips it."""
        self._changed.pop(key, None)
        self.emit(self.changelog, partition, KafkaRecord(key=key.encode(), value=None))

    def discard(self) -> None:
        """Forget what is owed: a fenced member must not send what it decided."""
        self._events = []
        self._changed = {}

    def dead_letter(self, error: DecodeError) -> None:
        log.warning("dead-lettering %s", error)
        metrics.dead_lettered(error.raw.topic)
        topic, record = dead_letter(error)
        self.emit(topic, None, record)

    async def send(
        self, snapshot: Callable[[str], bytes | None], *, snapshots: bool = True
    ) -> list[asyncio.Future[Any]]:
        """Send the events owed, and the snapshots too when `snapshots`; return the acks.

        The pending events are swapped out first, so handler tasks may send their
        own while the consume loop is between awaits.
        """
        events, self._events = self._events, []
        changed: dict[str, int] = {}
        if snapshots:
            changed, self._changed = self._changed, {}
        acks = []
        for key, partition in changed.items():
            value = snapshot(key)
            if value is not None:
                record = KafkaRecord(key=key.encode(), value=value)
                acks.append(await self._send(self.changelog, partition, record))
        for topic, number, record in events:
            acks.append(await self._send(topic, number, record))
        return acks

    async def _send(
        self, topic: str, partition: int | None, record: KafkaRecord
    ) -> asyncio.Future[Any]:
        # partition given: co-partitioning, the number of the input the state lives on
        future: asyncio.Future[Any] = await self.producer.send(
            topic, value=record.value, key=record.key, headers=record.headers, partition=partition
        )
        return future


class Refused(Exception):
    """A decodable event a processor will not act on: dead-lettered with this message
    (no traceback). `error_type` names the refusal where it is answered (a rejected
    trigger's failed end: `podium.workflow.failures`)."""

    def __init__(self, message: str, error_type: str = "Refused") -> None:
        super().__init__(message)
        self.error_type = error_type


#: called with (partition, the record, why) once a record is dead-lettered
Refuse = Callable[[int, RawRecord, Exception], None]


def handle(
    record: ConsumerRecord[bytes, bytes],
    route: Callable[[int, CloudEvent], None],
    outbox: Outbox,
    rejected: tuple[type[Exception], ...] = (),
    refuse: Refuse | None = None,
) -> None:
    """Decode one record and route it; what cannot be decoded or acted on is dead-lettered.

    `Refused` and `rejected` are the refusals a processor expects (an unknown
    workflow, say). Any other exception is a decodable event the processor cannot
    apply (a well-formed outcome for a task its workflow does not have, a state it
    cannot reach): it is logged with its traceback and dead-lettered too, so that one
    bad event cannot stop a consumer. Processors decide purely, committing state only
    after the decision, so the state is as it was before the event. Then `refuse`,
    when given, hears of the dead-lettered record, to answer it (a rejected trigger's
    waiter is owed an end); what it raises is logged, not raised.
    """
    raw = raw_record(record)
    expected: tuple[type[Exception], ...] = (Refused, *rejected)
    try:
        event = decode(raw)
    except DecodeError as error:
        outbox.dead_letter(error)
        _refused(refuse, record.partition, raw, error)
        return
    with logs.context(event.workflowid, event.taskid):  # on the lines the processor writes
        try:
            route(record.partition, event)
        except expected as exc:
            outbox.dead_letter(DecodeError(str(exc), raw))
            _refused(refuse, record.partition, raw, exc)
        except Exception as exc:
            log.exception("cannot apply %s[%d]@%d", record.topic, record.partition, record.offset)
            unprocessable = DecodeError(f"unprocessable: {type(exc).__name__}: {exc}", raw)
            outbox.dead_letter(unprocessable)
            _refused(refuse, record.partition, raw, unprocessable)


def _refused(refuse: Refuse | None, partition: int, raw: RawRecord, why: Exception) -> None:
    if refuse is None:
        return
    try:
        refuse(partition, raw, why)
    except Exception:
        log.exception("cannot answer %s[%d]@%d", raw.topic, raw.partition, raw.offset)


async def end_batch(
    outbox: Outbox,
    commits: AckedCommits,
    batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    snapshot: Callable[[str], bytes | None],
    membership: Membership,
) -> bool:
    """Send what the batch caused; its offsets commit once that is acknowledged.

    Snapshots go out only when a commit is due: that batch seals the ones before it.
    False when this member turned out to be fenced: nothing was sent, the caller
    drops its state and the group hands the partitions out again.
    """
    if not await membership.current():
        outbox.discard()
        commits.discard()
        membership.rejoin()
        return False
    sealed = commits.due()
    acks = await outbox.send(snapshot, snapshots=sealed)
    commits.add({tp: records[-1].offset + 1 for tp, records in batch.items()}, acks, sealed=sealed)
    await commits.step()
    return True


async def seal_and_drain(
    outbox: Outbox,
    commits: AckedCommits,
    snapshot: Callable[[str], bytes | None],
    membership: Membership,
) -> None:
    """Persist every changed state, wait for all acks, commit: before a hand-over.

    A member whose generation is already gone (it was paused past its session) has
    lost its partitions rather than handing them over: it writes nothing.
    """
    if membership.lost():
        outbox.discard()
        commits.discard()
        return
    commits.add({}, await outbox.send(snapshot), sealed=True)
    await commits.drain()
