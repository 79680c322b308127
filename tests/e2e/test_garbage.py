"""Garbage on every topic Podium reads: dead-lettered with its reason, or skipped on restore.

A whole deployment — the mode's services and conductor or tracker (a tracker beside
the conductor, as deployed), the trigger gateway with a schedule, and the history store
— on the in-memory bus and on the embedded broker. On each topic it reads: undecodable
bytes, a well-formed CloudEvent of a type that does not belong there, an oversized (but
sendable) record, and a right event with a null key. Each lands on the dead-letter topic
with a reason naming its topic, and a workflow still completes. Changelogs are read only
on restore: garbage there (no key, a key that is not UTF-8, junk and wrong-shaped JSON
under a live key, a huge value) is skipped with a log, the state under it intact.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from podium.client import Client, prepare_topics
from podium.conductor.conductor import Tracker
from podium.events import (
    KafkaRecord,
    TaskCommand,
    WorkflowTriggered,
    encode,
    new_event,
    topics,
)
from podium.history.database import Database
from podium.history.recorder import Recorder
from podium.oneshot import build_parts
from podium.runtime import memory
from podium.runtime.kafka import make_consumer, make_producer
from podium.runtime.memory import MAX_REQUEST_SIZE
from podium.triggers.gateway import Gateway
from podium.triggers.schedules import schedules_of
from podium.workflow.catalog import Catalog
from podium.workflow.loader import load_definitions, parse_definition
from tests.conftest import settings_for
from tests.e2e import services as test_services
from tests.e2e.conftest import FLOWS, Deployment

pytestmark = pytest.mark.integration

HOURLY = parse_definition(
    {
        "name": "hourly",
        "triggers": [{"cron": "0 * * * *", "input": {}}],
        "tasks": [{"id": "a", "type": "test.step"}],
    }
)
#: an oversized record the producer still sends (Kafka's default limit is 1 MB)
BIG = MAX_REQUEST_SIZE - 64 * 1024


@pytest.fixture(scope="module", params=["memory", "embedded"])
def where(request: pytest.FixtureRequest, brokers: Any) -> AsyncIterator[str]:
    if request.param == "embedded":
        yield brokers.get("embedded")
        return
    address = f"memory://{__name__}"
    yield address
    memory.drop(address)


class Running:
    """A deployment that can be stopped and started again on the same topics."""

    def __init__(self, mode: str, address: str, tmp: Any) -> None:
        self.mode = mode
        self.address = address
        self.settings = settings_for(address, mode=mode)
        self.catalog = Catalog([*load_definitions(FLOWS).values(), HOURLY])
        self.database = Database(f"sqlite:///{tmp / 'history.db'}")
        self.parts: list[Any] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        parts: list[Any] = build_parts(
            self.catalog, test_services.services, self.address, self.settings, self.mode
        )
        if self.mode == "orchestration":
            parts.append(Tracker(self.catalog, self.address, self.settings))
        parts.append(Gateway(self.catalog, self.address, self.settings))
        parts.append(Recorder(self.catalog, self.address, self.settings, self.database))
        self.parts = parts
        self.tasks = [asyncio.create_task(part.run()) for part in parts]
        ready = asyncio.gather(*(p.ready.wait() for p in parts))
        await asyncio.wait([ready, *self.tasks], timeout=60, return_when=asyncio.FIRST_COMPLETED)
        self.alive()
        assert ready.done(), "not ready in 60 s"

    async def stop(self) -> None:
        for part in self.parts:
            part.stop()
        results = await asyncio.gather(*self.tasks, return_exceptions=True)
        crashed = [r for r in results if isinstance(r, BaseException)]
        assert not crashed, crashed

    def alive(self) -> None:
        dead = [t for t in self.tasks if t.done()]
        assert not dead, [t.exception() for t in dead]


@pytest.fixture(scope="module", params=["orchestration", "choreography"])
async def running(
    where: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Running, Deployment]]:
    running = Running(request.param, where, tmp_path_factory.mktemp(request.param))
    await running.database.migrate()
    await prepare_topics(where, running.settings, running.catalog.task_types)
    await running.start()
    try:
        async with Client(where, running.settings) as client:
            deployment = Deployment(
                running.mode, client, running.catalog, running.settings, running.parts
            )
            yield running, deployment
    finally:
        await running.stop()
        await running.database.close()


def _event(payload: Any, workflow_id: str, marker: str) -> KafkaRecord:
    record = encode(new_event(payload, source="garbage", workflow_id=workflow_id))
    return KafkaRecord(record.key, record.value, [*record.headers, ("garbage", marker.encode())])


def _trigger(workflow_id: str, marker: str) -> KafkaRecord:
    return _event(
        WorkflowTriggered(workflow="fanout", version=1, input={"n": 1}), workflow_id, marker
    )


def _command(workflow_id: str, marker: str) -> KafkaRecord:
    payload = TaskCommand(
        workflow="fanout",
        version=1,
        command_id=f"{workflow_id}:a:1",
        task_id="a",
        task_type="test.step",
        attempt=1,
        input={},
        idempotency_key=f"{workflow_id}:a",
    )
    return _event(payload, workflow_id, marker)


def garbage(topic: str, run: str) -> dict[str, tuple[bytes | None, KafkaRecord]]:
    """marker -> (key, record): the four kinds of garbage for `topic`."""
    right, wrong = (_trigger, _command) if topic == topics.TRIGGERS else (_command, _trigger)
    big = right(f"{run}-big", f"{run}-big")
    big = KafkaRecord(big.key, b'{"input": "' + b"x" * BIG + b'"', big.headers)
    null = right(f"{run}-null", f"{run}-null")
    return {
        f"{run}-bytes": (
            b"junk",
            KafkaRecord(b"junk", b"\x00\xff\xfe", [("garbage", b"%b" % f"{run}-bytes".encode())]),
        ),
        f"{run}-wrong": (f"{run}-wrong".encode(), wrong(f"{run}-wrong", f"{run}-wrong")),
        f"{run}-big": (big.key, big),
        f"{run}-null": (None, null),
    }


async def publish(
    address: str, topic: str, records: list[tuple[bytes | None, KafkaRecord]]
) -> None:
    producer = make_producer(address)
    await producer.start()
    try:
        for key, record in records:
            await producer.send_and_wait(topic, value=record.value, key=key, headers=record.headers)
    finally:
        await producer.stop()


async def dead_letters(address: str, markers: set[str]) -> dict[str, dict[str, bytes]]:
    """The dead-letter headers of a record carrying each marker."""
    consumer = make_consumer(address, topics.DEAD_LETTER, group_id=None)
    await consumer.start()
    found: dict[str, dict[str, bytes]] = {}
    try:
        async with asyncio.timeout(30):
            while found.keys() != markers:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        headers = dict(record.headers)
                        marker = headers.get("garbage", b"").decode()
                        if marker in markers:
                            found[marker] = headers
    finally:
        await consumer.stop()
    return found


READ = {
    "triggers": topics.TRIGGERS,
    "commands": topics.commands("test.step"),
    "outcomes": topics.outcomes("test.step"),
    "lifecycle": topics.WORKFLOWS,
}


@pytest.mark.parametrize("name", list(READ))
async def test_garbage_on_a_topic_is_dead_lettered_with_its_reason(
    running: tuple[Running, Deployment], name: str
) -> None:
    deployment_, deployment = running
    topic, run = READ[name], uuid.uuid4().hex[:8]
    records = garbage(topic, run)
    await publish(deployment_.address, topic, list(records.values()))
    found = await dead_letters(deployment_.address, set(records))
    for marker, headers in found.items():
        assert headers["podium_dlq_topic"] == topic.encode(), marker
        assert headers["podium_dlq_reason"], marker
    assert (
        b"not UTF-8" in found[f"{run}-bytes"]["podium_dlq_reason"]
        or b"missing" in (found[f"{run}-bytes"]["podium_dlq_reason"])
    )
    assert found[f"{run}-null"]["podium_dlq_reason"].startswith(b"no key where")
    deployment_.alive()
    assert (await deployment.run("fanout", {"n": 1})).state == "Succeeded"


def changelogs(running: Running) -> list[str]:
    if running.mode == "orchestration":
        return [topics.CONDUCTOR_CHANGELOG, topics.TRACKER_CHANGELOG, topics.GATEWAY_CHANGELOG]
    return [
        topics.TRACKER_CHANGELOG,
        topics.GATEWAY_CHANGELOG,
        *(topics.choreography_changelog(s.name) for s in test_services.services),
    ]


async def test_garbage_on_every_changelog_is_skipped_on_restore(
    running: tuple[Running, Deployment], caplog: pytest.LogCaptureFixture
) -> None:
    deployment_, deployment = running
    if not memory.is_memory(deployment_.address):
        pytest.skip("a restart on a broker waits out group joins (~14 s a mode): memory only")
    # a workflow in flight across the restart, and the schedule's key in the gateway's
    in_flight = await deployment.start("chain", {"sleep": 0.4})
    schedule = schedules_of(deployment_.catalog, deployment_.settings.partitions)[0]
    records = []
    for live in (in_flight.encode(), schedule.key.encode()):
        for value in (b"\x00junk", b"[1]", b"1", b'{"mode": 7}', b"x" * BIG):
            records.append((live, KafkaRecord(live, value)))
    records += [
        (None, KafkaRecord(b"", b"junk")),
        (b"\xff\xfe", KafkaRecord(b"\xff\xfe", b"junk")),
        (b"\xff\xfe", KafkaRecord(b"\xff\xfe", orjson.dumps({"last": 1.0}))),
    ]
    await asyncio.sleep(0.2)  # the first snapshots are written
    for topic in changelogs(deployment_):
        await publish(deployment_.address, topic, records)
    await deployment_.stop()
    with caplog.at_level(logging.ERROR, logger="podium.changelog"):
        await deployment_.start()
    deployment.parts = deployment_.parts
    assert "unreadable snapshot" in caplog.text
    result = await deployment.wait(in_flight, 30)
    assert (result.state, result.output) == ("Succeeded", {"last": 5})
    deployment_.alive()
    assert (await deployment.run("fanout", {"n": 1})).state == "Succeeded"
