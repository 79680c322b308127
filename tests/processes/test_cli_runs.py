"""The commands a user types, as separate processes against a real broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import orjson
import pytest

from tests.processes.conftest import BROKERS, fresh_broker
from tests.processes.procs import ROOT, Proc, podium

pytestmark = pytest.mark.integration

ORDER = ["examples/order/order.yaml", "--services", "examples.order.shop:services"]


def test_run_json_prints_exactly_one_result_object() -> None:
    done = podium("run", *ORDER, "--input", '{"sku": "A-1", "qty": 2, "amount": 30}', "--json")
    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout)  # the whole of stdout is one JSON object
    assert set(result) == {
        "workflow_id", "workflow", "version", "mode", "state", "output",
        "error", "started_at", "ended_at", "tasks",
    }  # fmt: skip
    assert (result["workflow"], result["version"], result["mode"]) == ("order", 1, "orchestration")
    assert result["state"] == "Succeeded"
    wid = result["workflow_id"]
    assert result["output"] == {
        "reservation_id": f"r-{wid}",
        "charge_id": f"c-{wid}",
        "tracking": f"t-{wid}",
    }
    assert result["tasks"]["charge"] == {
        "state": "Succeeded",
        "attempts": 1,
        "output": {"charge_id": f"c-{wid}", "amount": 30},
        "error": None,
    }
    assert "embedded broker" in done.stderr


def test_run_exits_1_when_the_saga_compensates() -> None:
    done = podium("run", *ORDER, "--input", '{"sku": "A-1", "qty": 2, "amount": 5000}', "--json")
    assert done.returncode == 1, done.stderr
    result = orjson.loads(done.stdout)
    assert result["state"] == "Compensated"
    assert result["tasks"]["charge"]["state"] == "Failed"
    assert result["tasks"]["charge"]["error"]["retryable"] is False
    assert result["tasks"]["ship"]["state"] == "Pending"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", '{"sku": "A-1"}'], "'qty' is a required property"),
        (["--input", "not json"], "--input is not JSON"),
        (["--input", "{}", "--mode", "sideways"], "--mode must be"),
    ],
)
def test_run_refuses_bad_input_with_exit_2(args: list[str], message: str) -> None:
    done = podium("run", *ORDER, *args, "--json")
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


def test_run_refuses_a_broken_definition_naming_every_problem() -> None:
    done = podium("run", "tests/broken/broken.yaml", "--services", "x:y", "--json")
    assert done.returncode == 2
    assert "broken.yaml: task" in done.stderr


@pytest.fixture(scope="module", params=BROKERS)
def broker(request: pytest.FixtureRequest) -> Iterator[str]:
    """One broker of each kind for this module's tests (they use their own topics)."""
    with fresh_broker(request.param) as bootstrap:
        yield bootstrap


def test_separate_service_conductor_and_trigger_processes(broker: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"PODIUM_BOOTSTRAP_SERVERS": broker, "PODIUM_DEFINITIONS": "tests/e2e/flows"}
    with (
        Proc(["service", "tests.e2e.services:services"], env) as service,
        Proc(["conductor"], env) as conductor,
    ):
        service.wait_ready()
        conductor.wait_ready()
        done = podium(
            "trigger", "chain", "--input", '{"sleep": 0}', "--wait", "--json", "--id", "wf-sep-1",
            env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        result = orjson.loads(done.stdout)
        assert (result["workflow_id"], result["state"]) == ("wf-sep-1", "Succeeded")
        assert result["output"] == {"last": 5}

        refused = podium("trigger", "guarded", "--input", '{"n": "five"}', env=env)
        assert refused.returncode == 2
        assert (
            "input rejected" in refused.stderr
            and "'five' is not of type 'integer'" in refused.stderr
        )

        assert service.terminate() == 0
        assert conductor.terminate() == 0


def test_validate_passes_the_shipped_examples_and_names_every_problem_of_a_broken_one() -> None:
    ok = podium("validate", "examples/order.yaml", "examples/etl.yaml")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == [
        "examples/order.yaml: ok — order v1, 3 tasks",
        "examples/etl.yaml: ok — etl v1, 7 tasks",
    ]
    broken = podium("validate", "tests/broken/broken.yaml")
    assert broken.returncode == 2
    problems = broken.stderr.splitlines()
    assert len(problems) >= 15
    assert "tests/broken/broken.yaml: task 'a': dependency cycle: a -> b -> c -> a" in problems


def test_run_beside_a_live_deployment_leaves_it_alone(broker: str) -> None:
    """`podium run` on a shared broker: its conductor handles its own workflow only."""
    env = {"PODIUM_BOOTSTRAP_SERVERS": broker, "PODIUM_DEFINITIONS": "examples/order"}
    with (
        Proc(["service", "examples.order.shop:services"], env) as service,
        Proc(["conductor"], env) as conductor,
    ):
        service.wait_ready()
        conductor.wait_ready()
        done = podium(
            "run", "examples/etl/etl.yaml", "--services", "examples.etl.pipeline:services",
            "--input", '{"source": "s3://x"}', "--json", env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert orjson.loads(done.stdout)["state"] == "Succeeded"
        live = podium(
            "trigger", "order", "--input", '{"sku": "A", "qty": 1, "amount": 5}', "--wait",
            "--json", env=env,
        )  # fmt: skip
        assert live.returncode == 0, live.stderr
        assert orjson.loads(live.stdout)["state"] == "Succeeded"
        # the live conductor cannot run an etl trigger: it says so, and dead-letters it
        deadline = time.monotonic() + 30
        while not (foreign := [line for line in conductor.lines if "dead-lettering" in line]):
            assert time.monotonic() < deadline, "the etl trigger was never dead-lettered"
            time.sleep(0.05)  # polls the conductor's log
        assert all("unknown workflow etl" in line for line in foreign)


def test_trigger_refuses_without_a_broker_and_names_an_unreachable_one() -> None:
    order = ["trigger", "order", "--definitions", "examples/order"]
    payload = ["--input", '{"sku": "A", "qty": 1, "amount": 5}']
    env = {k: v for k, v in os.environ.items() if k != "PODIUM_BOOTSTRAP_SERVERS"}
    alone = subprocess.run(
        [sys.executable, "-m", "podium", *order, *payload],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert alone.returncode == 2
    assert "no bootstrap servers" in alone.stderr and alone.stdout == ""
    unreachable = podium(*order, *payload, "--bootstrap-servers", "127.0.0.1:1")
    assert unreachable.returncode == 1
    assert "cannot reach Kafka" in unreachable.stderr and "Traceback" not in unreachable.stderr
