"""A task service written in Node.js with kafkajs (examples/polyglot/service.js) takes part
in an orchestrated workflow beside Python services, on the embedded broker: `podium
conductor`, `podium service` (inventory, shipping) and `node service.js` (payments) as
processes; the workflow is triggered, and its end read, by `node trigger.js`.
The JavaScript `cloudevents` SDK then reads the records of a workflow
(`read-cloudevents.js`).

Skipped with the reason where `node` or `npm` is missing, or `npm ci` cannot install the
locked packages (offline, no cache).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator

import orjson
import pytest
from aiokafka import ConsumerRecord

from podium.broker import EmbeddedBroker
from podium.runtime.changelog import read_partitions
from podium.runtime.kafka import make_producer
from tests.processes.procs import ROOT, Proc

pytestmark = pytest.mark.integration

POLYGLOT = ROOT / "examples" / "polyglot"
DEFINITIONS = "examples/polyglot/order.yaml"


@pytest.fixture(scope="module")
def node() -> str:
    """`node`, once `npm ci` has installed the lock file's packages."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the Node.js service (not on PATH)")
    installed = POLYGLOT / "node_modules" / ".package-lock.json"  # npm's record of node_modules
    lock = POLYGLOT / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"],
            cwd=POLYGLOT, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"npm ci failed (offline?): {done.stderr.strip()[-300:]}")
    return node


class NodeProc:
    """`node <script>` in examples/polyglot, its stderr collected; ready when it says so."""

    def __init__(self, node: str, script: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [node, script], cwd=POLYGLOT, env={**os.environ, **env},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if "podium: ready" in line:
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float = 60) -> None:
        if not self._ready.wait(timeout) or self.process.poll() is not None:
            raise RuntimeError(f"node service not ready:\n{''.join(self.lines[-30:])}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture(scope="module")
def deployment(node: str) -> Iterator[dict[str, str]]:
    with EmbeddedBroker() as broker:
        env = {
            "PODIUM_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "PODIUM_DEFINITIONS": DEFINITIONS,
            "PODIUM_SESSION_TIMEOUT_MS": "3000",
            "KAFKAJS_NO_PARTITIONER_WARNING": "1",
        }
        with Proc(["conductor"], env) as conductor:
            conductor.wait_ready()
            payments = NodeProc(node, "service.js", env)
            try:
                with Proc(["service", "examples.polyglot.shop:services"], env) as python:
                    python.wait_ready()
                    payments.wait_ready()
                    yield env
            finally:
                payments.stop()


def _trigger(node: str, env: dict[str, str], amount: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [node, "trigger.js", "polyglot-order", "1", orjson.dumps({"sku": "A", "qty": 1, "amount": amount}).decode()],
        cwd=POLYGLOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _result(trigger: subprocess.Popen[str]) -> tuple[int, dict]:
    out, err = trigger.communicate(timeout=90)
    assert out, err
    return trigger.returncode, orjson.loads(out)


@pytest.fixture(scope="module")
def ran(node: str, deployment: dict[str, str]) -> dict[str, tuple[int, dict]]:
    """Two workflows at once: one to succeed, one whose Node.js task fails for good."""
    ok, declined = _trigger(node, deployment, 30), _trigger(node, deployment, 5000)
    return {"ok": _result(ok), "declined": _result(declined)}


def test_a_workflow_whose_middle_task_runs_in_node(ran: dict[str, tuple[int, dict]]) -> None:
    code, result = ran["ok"]
    wid = result["workflow_id"]
    assert (code, result["state"], result["mode"]) == (0, "Succeeded", "orchestration")
    assert result["output"] == {
        "charge": {"charge_id": f"c-{wid}", "amount": 30, "by": "node"},
        "tracking": f"t-{wid}",
    }
    assert result["tasks"]["charge"]["attempts"] == 1
    code, result = ran["declined"]
    assert (code, result["state"]) == (1, "Compensated")
    assert result["tasks"]["charge"]["state"] == "Failed"
    assert result["tasks"]["charge"]["error"] == {
        "type": "TaskError", "message": "card declined: amount over the limit", "retryable": False,
    }  # fmt: skip
    assert result["tasks"]["ship"]["state"] == "Pending"


def test_the_javascript_cloudevents_sdk_reads_podiums_records(
    node: str, deployment: dict[str, str], ran: dict[str, tuple[int, dict]]
) -> None:
    """The official `cloudevents` package (its Kafka binding) reads what the conductor, the
    Python service and the Node.js service wrote, and finds each event valid CloudEvents 1.0."""
    wid = ran["ok"][1]["workflow_id"]
    read = subprocess.run(
        [node, "read-cloudevents.js", wid, "podium.workflows",
         "podium.tasks.payments.charge.commands", "podium.tasks.payments.charge.outcomes",
         "podium.tasks.inventory.reserve.outcomes",
         "--until", "podium.workflow.completed", "--until", "podium.task.command:charge",
         "--until", "podium.task.succeeded:charge", "--until", "podium.task.succeeded:reserve"],
        cwd=POLYGLOT, env={**os.environ, **deployment}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert read.returncode == 0, read.stderr
    events = [orjson.loads(line) for line in read.stdout.splitlines()]
    for event in events:
        assert (event["specversion"], event["subject"], event["partitionkey"]) == ("1.0", wid, wid)
        assert event["datacontenttype"] == "application/json"
    by = {(e["type"], e.get("taskid")): e for e in events}
    command = by["podium.task.command", "charge"]
    succeeded = by["podium.task.succeeded", "charge"]
    assert succeeded["source"] == "podium/service/payments-node"
    assert succeeded["id"] == f"{command['data']['command_id']}:succeeded"
    assert succeeded["causationid"] == command["id"]
    assert succeeded["partition"] == command["partition"]
    assert succeeded["data"]["output"] == {"charge_id": f"c-{wid}", "amount": 30, "by": "node"}
    assert by["podium.task.succeeded", "reserve"]["source"].startswith("podium/service/")
    assert by["podium.workflow.completed", None]["data"]["state"] == "Succeeded"


async def _records(bootstrap: str, topic: str, wid: str) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        r async for r in read_partitions(bootstrap, topic, set(range(8))) if r.key == wid.encode()
    ]


async def test_a_redelivered_command_is_answered_again_not_rerun(
    deployment: dict[str, str], ran: dict[str, tuple[int, dict]]
) -> None:
    """The same command again (a redelivery): the Node.js service publishes the outcome it
    recorded, same id and output, on the command's partition, without a new start marker."""
    wid, bootstrap = ran["ok"][1]["workflow_id"], deployment["PODIUM_BOOTSTRAP_SERVERS"]
    outcomes = "podium.tasks.payments.charge.outcomes"
    [command] = await _records(bootstrap, "podium.tasks.payments.charge.commands", wid)
    before = await _records(bootstrap, outcomes, wid)
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            command.topic, command.value, command.key, command.partition, headers=list(command.headers)
        )  # fmt: skip
    finally:
        await producer.stop()
    for _ in range(100):
        after = await _records(bootstrap, outcomes, wid)
        if len(after) > len(before):
            break
        await asyncio.sleep(0.1)
    types = [dict(r.headers)["ce_type"] for r in after]
    assert types == [b"podium.task.started", b"podium.task.succeeded", b"podium.task.succeeded"]
    first, again = after[1], after[2]
    assert (again.value, again.partition) == (first.value, command.partition)
    assert dict(again.headers)["ce_id"] == dict(first.headers)["ce_id"]


async def test_node_writes_the_headers_and_fields_python_writes(
    deployment: dict[str, str], ran: dict[str, tuple[int, dict]]
) -> None:
    """The Node.js service's outcome records carry the same header names, and their data the
    same fields, as the Python service's (inventory.reserve) in the same workflow."""
    wid, bootstrap = ran["ok"][1]["workflow_id"], deployment["PODIUM_BOOTSTRAP_SERVERS"]
    node_records = await _records(bootstrap, "podium.tasks.payments.charge.outcomes", wid)
    python_records = await _records(bootstrap, "podium.tasks.inventory.reserve.outcomes", wid)

    def shape(records: list[ConsumerRecord[bytes, bytes]]) -> list[tuple[list[str], list[str]]]:
        return [
            (sorted(name for name, _ in r.headers), sorted(orjson.loads(r.value or b"null")))
            for r in records[:2]
        ]

    assert shape(node_records) == shape(python_records)
    for node, python in zip(node_records[:2], python_records[:2], strict=True):
        assert dict(node.headers)["ce_correlationid"] == dict(python.headers)["ce_correlationid"]
        assert dict(node.headers)["ce_traceparent"] == dict(python.headers)["ce_traceparent"]
