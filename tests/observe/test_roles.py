"""The roles as real processes on the embedded broker, as deployed.

Two task service processes (inventory; payments and shipping) and a conductor,
each with `--metrics-port` and `OTEL_TRACES_EXPORTER=console`, run the order
saga to its compensation: their `/metrics` are scraped over HTTP, their stderr
(a pipe, not a terminal) is JSON lines naming the workflow and task, and the
spans both service processes and the conductor export form one trace.
"""

from __future__ import annotations

import socket
import urllib.request
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from podium.broker import EmbeddedBroker
from podium.events.envelope import workflow_trace_ids
from tests.processes.procs import Proc, podium

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _json_lines(proc: Proc) -> list[dict[str, Any]]:
    out = []
    for line in proc.lines:
        if line.startswith("{"):
            out.append(orjson.loads(line))
        else:
            assert line.startswith("podium: "), line  # the ready line; nothing else is text
    return out


def test_metrics_logs_and_one_trace_across_service_processes() -> None:
    inventory_port, conductor_port = _free_port(), _free_port()
    with EmbeddedBroker() as embedded:
        env = {
            "PODIUM_BOOTSTRAP_SERVERS": embedded.bootstrap_servers,
            "PODIUM_DEFINITIONS": "examples/order",
            "PODIUM_CONSUMER__SESSION_TIMEOUT_MS": "3000",
            "OTEL_TRACES_EXPORTER": "console",
        }
        with (
            Proc(
                ["service", "examples.order.shop:inventory", "--metrics-port", str(inventory_port)],
                env,
            ) as inventory,
            Proc(
                ["service", "examples.order.shop:payments", "examples.order.shop:shipping"], env
            ) as payments,
            Proc(["conductor"], {**env, "PODIUM_METRICS_PORT": str(conductor_port)}) as conductor,
        ):
            for proc in (inventory, payments, conductor):
                proc.wait_ready()
            done = podium(
                "trigger", "order", "--input", '{"sku": "A", "qty": 1, "amount": 5000}',
                "--wait", "--json", env=env,
            )  # fmt: skip
            assert done.returncode == 1, done.stderr
            result = orjson.loads(done.stdout)
            assert result["state"] == "Compensated"
            workflow_id = result["workflow_id"]

            at_conductor = _scrape(conductor_port)
            order = {("workflow", "order"), ("mode", "orchestration")}
            assert at_conductor[("podium_workflows_started_total", frozenset(order))] == 1
            ended = frozenset({*order, ("state", "Compensated")})
            assert at_conductor[("podium_workflows_ended_total", ended)] == 1
            lag = [k for k in at_conductor if k[0] == "podium_consumer_lag"]
            assert ("group", "podium.conductor") in lag[0][1]

            at_inventory = _scrape(inventory_port)
            for task_type in ("inventory.reserve", "inventory.release"):
                labels = {("task_type", task_type), ("mode", "orchestration")}
                done_ok = frozenset({*labels, ("outcome", "succeeded")})
                assert at_inventory[("podium_task_attempts_total", done_ok)] == 1
                assert at_inventory[("podium_task_duration_seconds_count", frozenset(labels))] == 1
                assert at_inventory[("podium_task_queued_seconds_count", frozenset(labels))] == 1
            assert ("podium_workflows_started_total", frozenset(order)) not in at_inventory

            for proc in (inventory, payments, conductor):
                assert proc.terminate() == 0  # exports the spans still batched
                proc._reader.join(10)

    logged = [line for line in _json_lines(inventory) if "message" in line]  # spans: "context"
    (released,) = [line for line in logged if line["message"].startswith("released")]
    assert released["workflow_id"] == workflow_id and released["task_id"] == "reserve"
    assert released["logger"] == "podium.service" and released["level"] == "INFO"
    assert released["trace_id"] == workflow_id  # the compensation's span

    spans = [
        line
        for proc in (inventory, payments, conductor)
        for line in _json_lines(proc)
        if "context" in line
    ]
    trace_id, root_id = workflow_trace_ids(workflow_id)
    assert {s["context"]["trace_id"] for s in spans} == {f"0x{trace_id:032x}"}
    by_service = sorted((s["resource"]["attributes"]["service.name"], s["name"]) for s in spans)
    assert by_service == [
        ("podium-conductor", "workflow order"),
        ("podium-inventory", "compensate reserve"),
        ("podium-inventory", "task reserve"),
        ("podium-payments+shipping", "task charge"),
    ]
    for span in spans:
        if span["name"] == "workflow order":
            assert span["parent_id"] is None and span["context"]["span_id"] == f"0x{root_id:016x}"
        else:
            assert span["parent_id"] == f"0x{root_id:016x}"
