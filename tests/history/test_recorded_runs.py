"""`podium run` records its workflow; `podium status --json` then prints what the run printed.

On the embedded broker, one workflow in each mode (run in this process, side by
side, as `podium run` runs them), read back by the real commands.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from podium.client import result_json
from podium.events import Mode
from podium.history.database import Database
from podium.loading import load_services
from podium.oneshot import run_once
from podium.workflow.loader import load_definition
from tests.conftest import Brokers, settings_for
from tests.processes.procs import podium

pytestmark = pytest.mark.integration


async def test_status_prints_the_run_result_and_history_the_transitions_in_both_modes(
    brokers: Brokers, tmp_path: Path
) -> None:
    bootstrap = brokers.get("embedded")
    url = f"sqlite:///{tmp_path / 'history.db'}"
    settings = settings_for(bootstrap)

    async def run(example: str, services: str, input: dict[str, object], mode: Mode):  # type: ignore[no-untyped-def]
        return await run_once(
            load_definition(Path(example)),
            load_services([services]),
            input,
            bootstrap_servers=bootstrap,
            settings=settings,
            mode=mode,
            timeout=60,
            history=Database(url),
        )

    (saga, saga_end), (etl, etl_end) = await asyncio.gather(
        run(
            "examples/order/order.yaml",
            "examples.order.shop:services",
            {"sku": "A-1", "qty": 2, "amount": 5000},  # declined for good: compensated
            Mode.ORCHESTRATION,
        ),
        run(
            "examples/etl/etl.yaml",
            "examples.etl.pipeline:services",
            {"source": "s3://bucket/x"},  # transform_b flakes twice; enrich skipped
            Mode.CHOREOGRAPHY,
        ),
    )
    env = {"PODIUM_HISTORY_URL": url}
    for workflow_id, ended in ((saga, saga_end), (etl, etl_end)):
        printed_by_run = orjson.loads(orjson.dumps(result_json(workflow_id, ended)))
        status = podium("status", workflow_id, "--json", env=env)
        assert status.returncode == 0, status.stderr
        assert orjson.loads(status.stdout) == printed_by_run
    assert saga_end.state == "Compensated" and etl_end.state == "Succeeded"

    history = podium("history", etl, "--json", env=env)
    assert history.returncode == 0, history.stderr
    entries = orjson.loads(history.stdout)
    assert (entries[0]["task_id"], entries[0]["to_state"]) == (None, "Running")
    assert (entries[-1]["task_id"], entries[-1]["to_state"]) == (None, "Succeeded")
    transform_b = [e["to_state"] for e in entries if e["task_id"] == "transform_b"]
    assert transform_b == ["Running", "Retrying", "Running", "Retrying", "Running", "Succeeded"]
    assert [e["to_state"] for e in entries if e["task_id"] == "enrich"] == ["Skipped"]
    assert all(e["duration_s"] >= 0 for e in entries if e["duration_s"] is not None)

    listed = podium("list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    modes = {item["workflow_id"]: item["mode"] for item in orjson.loads(listed.stdout)}
    assert modes == {saga: "orchestration", etl: "choreography"}

    unknown = podium("status", "no-such-workflow", env=env)
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.strip().count("\n") == 0 and "no-such-workflow" in unknown.stderr
