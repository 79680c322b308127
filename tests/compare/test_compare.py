"""`podium compare` as a user runs it: a real process, both modes on the in-memory bus.

The order saga with a fifth of its charges declined for good (compensated) and a tenth of
all attempts failing retryably (`--fail-rate`): the JSON has both modes with their
percentiles, the outcome counts add up to `--runs` and nothing is lost; the HTML report
opens in a headless Chromium (Debian's; skipped without one) and draws its three charts.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from podium.broker import EmbeddedBroker
from podium.compare.recovery import Kill, KillRecord, parse_kills, recovery
from podium.compare.scorecard import headline, scorecard
from podium.events import Mode

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
RUNS = 20
OUTCOMES = {"succeeded", "failed", "compensated", "cancelled", "timed_out", "lost"}
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def podium(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODIUM_LOG_LEVEL": "WARNING"}
    env.pop("PODIUM_BOOTSTRAP_SERVERS", None)
    return subprocess.run(
        [sys.executable, "-m", "podium", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    folder = tmp_path_factory.mktemp("compare")
    inputs = folder / "inputs.jsonl"
    # every fifth order is declined for good: the saga compensates it, in both modes
    orders = [{"sku": "A-1", "qty": 1, "amount": 2000 if i % 5 == 4 else 30} for i in range(5)]
    inputs.write_text("".join(json.dumps(o) + "\n" for o in orders))
    results, report = folder / "results.json", folder / "report.html"
    done = podium(
        *("compare", "examples/order/order.yaml"),
        *("--services", "examples.order.shop:services"),
        *("--inputs", str(inputs), "--runs", str(RUNS), "--concurrency", "4"),
        *("--fail-rate", "0.1", "--bootstrap-servers", "memory://compare"),
        *("--json", str(results), "--report", str(report)),
    )
    assert done.returncode == 0, done.stderr
    assert "lost" in done.stdout  # the terminal table
    return json.loads(results.read_text()), report


def test_both_modes_every_run_accounted_for(compared: tuple[dict, Path]) -> None:
    doc, _ = compared
    for mode in ("orchestration", "choreography"):
        figures = doc[mode]
        assert set(figures["outcomes"]) == OUTCOMES
        assert sum(figures["outcomes"].values()) == RUNS
        assert figures["outcomes"]["lost"] == 0
        # every fifth order is declined; an injected failure of `ship` (one attempt) fails
        # its order for good too
        assert figures["outcomes"]["compensated"] >= RUNS // 5
        assert 0 < figures["p50"] <= figures["p95"] <= figures["p99"] <= figures["max"]
        assert figures["task_attempts_per_workflow"] > 2  # retries and undos counted
        messages = figures["messages_per_workflow"]
        assert messages["triggers"] == 1 and messages["completions"] > 0
        assert messages["dead_letters"] == 0
    # the same inputs and the same injected failures in both modes: the same ends
    assert doc["orchestration"]["outcomes"] == doc["choreography"]["outcomes"]
    assert doc["orchestration"]["messages_per_workflow"]["commands"] > 0
    assert doc["choreography"]["messages_per_workflow"]["commands"] == 0
    assert doc["choreography"]["structure"]["coupling"]["payments"]  # it reacts to others
    assert "p50" in doc["verdict"] and "messages a workflow" in doc["verdict"]
    assert doc["headline"].startswith(("Orchestration for order", "Choreography for order"))
    assert {row["name"] for row in doc["scorecard"]} >= {"latency p50", "throughput"}


def test_usage_errors_exit_2() -> None:
    """Refused before anything starts (in this process: no broker, no workflow)."""
    from typer.testing import CliRunner

    from podium.cli import app

    base = ["compare", "examples/order/order.yaml", "--services", "examples.order.shop:services"]
    runner = CliRunner()
    on_memory = runner.invoke(
        app, [*base, "--kill", "payments@2", "--bootstrap-servers", "memory://x"]
    )
    assert on_memory.exit_code == 2 and "needs a broker" in on_memory.stderr
    for kill, says in [
        ("billing@2", "no 'billing' to kill; known: inventory, payments, shipping, conductor"),
        ("payments", "expected TARGET@SECONDS"),
        ("payments@soon", "'soon' is not a number"),
        ("payments@0", "above 0"),
    ]:
        refused = runner.invoke(app, [*base, "--kill", kill, "--bootstrap-servers", "x:1"])
        assert refused.exit_code == 2 and says in refused.stderr, refused.stderr
    twice = ["--kill", "payments@1", "--kill", "payments@2", "--bootstrap-servers", "x:1"]
    refused = runner.invoke(app, [*base, *twice])
    assert refused.exit_code == 2 and "payments named more than once" in refused.stderr
    refused = runner.invoke(app, [*base, "--input", '{"sku": 1}'])
    assert refused.exit_code == 2 and "rejected" in refused.stderr
    both = runner.invoke(app, [*base, "--input", "{}", "--inputs", "x.jsonl"])
    assert both.exit_code == 2 and "not both" in both.stderr


def chromium() -> str | None:
    named = os.environ.get("PODIUM_CHROMIUM")
    if named:
        return shutil.which(named)
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


async def test_report_opens_in_a_browser_with_its_charts(compared: tuple[dict, Path]) -> None:
    doc, report = compared
    path = chromium()
    if path is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium)")
    playwright = pytest.importorskip("playwright.async_api")
    async with playwright.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=path)
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 1800})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            # no network: everything the page needs is in the file
            await page.route("http*://**", lambda route: route.abort())
            await page.goto(report.as_uri())
            await page.wait_for_function(
                "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3"
            )
            assert await page.locator(".js-plotly-plot").count() == 3
            assert await page.locator("#verdict").inner_text() == doc["verdict"]
            assert await page.locator("#headline").inner_text() == doc["headline"]
            won = sum(row["better"] is not None for row in doc["scorecard"])
            assert await page.locator("#scorecard td.won").count() == won
            # the CDF draws one line per mode
            assert await page.locator("#chart-0 .scatterlayer .trace").count() == 2
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "compare-report.png"), full_page=True)
            assert not errors, errors
        finally:
            await browser.close()


def test_recovery_figures_from_the_spans() -> None:
    """Caught: running at the kill or triggered before the restart was ready."""
    kill = KillRecord(Kill("payments", 1.0), "payments", killed_at=1.0, ready_at=3.0)
    spans = [(0.0, 0.5), (0.6, 0.9), (0.8, 3.4), (2.0, 3.5), (3.1, 3.2), (3.3, 3.6)]
    figures = recovery(kill, spans, measured_s=4.0)
    assert figures["caught"] == 2  # (0.8, 3.4) and (2.0, 3.5); (3.1, 3.2) came after
    assert figures["recovered_s"] == 2.5
    assert figures["restart_ready_s"] == 2.0
    assert figures["longest_gap_s"] == 2.3  # 0.9 (last end before) -> 3.2
    assert figures["slowest_caught_ms"] == 2600.0
    late = recovery(KillRecord(Kill("payments", 9.0), "payments"), spans, measured_s=4.0)
    assert late["killed"] is False and "ended at 4.0 s" in late["note"]


def test_the_conductor_kill_names_the_tracker_in_choreography() -> None:
    (kill,) = parse_kills(["conductor@2.5"], ["payments"])
    assert kill.role(Mode.ORCHESTRATION) == "conductor"
    assert kill.role(Mode.CHOREOGRAPHY) == "tracker"
    assert kill.at_s == 2.5


@pytest.mark.timeout(300)  # two group rejoins on a shared 2-core box
def test_a_killed_service_recovers_in_both_modes_and_the_run_leaves_no_topics(
    tmp_path: Path,
) -> None:
    """`--kill payments@0.1` on the embedded broker: every part runs as a process of its
    own, payments is SIGKILLed early in each mode's runs and restarted; every workflow
    still ends, the recovery is reported, and the run's own topics are gone afterwards."""
    results, report = tmp_path / "results.json", tmp_path / "report.html"
    with EmbeddedBroker() as broker:
        done = podium(
            *("compare", "examples/order/order.yaml"),
            *("--services", "examples.order.shop:services"),
            *("--input", '{"sku": "A-1", "qty": 1, "amount": 30}'),
            *("--runs", "24", "--concurrency", "4", "--kill", "payments@0.1"),
            *("--bootstrap-servers", broker.bootstrap_servers),
            *("--json", str(results), "--report", str(report)),
            timeout=280,
        )
        assert done.returncode == 0, done.stderr
        left = asyncio.run(_topics(broker.bootstrap_servers))
    doc = json.loads(results.read_text())
    assert doc["kills"] == ["payments@0.1"]
    for mode in ("orchestration", "choreography"):
        figures = doc[mode]
        assert figures["outcomes"]["succeeded"] == 24 and figures["outcomes"]["lost"] == 0
        (kill,) = figures["recovery"]
        assert kill["killed"] and kill["role"] == "payments"
        assert kill["caught"] > 0 and kill["recovered_s"] > 0
        assert kill["restart_ready_s"] is not None
        # the probe's figures came back from the payments processes too; a command the
        # killed one ran but had not answered runs again (at least once): 3 or a little more
        assert figures["task_attempts_per_workflow"] >= 3
        assert len(figures["recovery_timeline"]) == 24
        # on a broker every part runs as a process of its own, each with its CPU figure
        coordinator = "conductor" if mode == "orchestration" else "tracker"
        parts = figures["cpu_ms_per_workflow"]["parts"]
        assert set(parts) == {"inventory", "payments", "shipping", coordinator}
        assert all(ms > 0 for ms in parts.values())
    assert "Killing payments at 0.1 s" in doc["verdict"]
    assert "Recovery timeline" in report.read_text()
    scoped = [t for t in left if ".cmp" in t or t.startswith("podium.compare.")]
    assert scoped == [], scoped


async def _topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


def test_the_headline_names_the_mode_that_won_on_performance_and_what_the_other_gives() -> None:
    def mode(p50: float, p99: float, rate: float, messages: float, readers: int) -> dict:
        return {
            "p50": p50,
            "p99": p99,
            "workflows_per_s": rate,
            "recovery": [],
            "messages_per_workflow": {"commands": messages},
            "bytes_per_workflow": {"commands": 100.0},
            "cpu_ms_per_workflow": {"process": 1.0, "broker": None},
            "structure": {"knows_the_definition": ["x"] * readers, "topics": 10},
        }

    doc = {
        "kills": [],
        "orchestration": mode(80, 120, 300, 16, 1),
        "choreography": mode(60, 100, 290, 22, 4),
    }
    rows = scorecard(doc)
    assert [r.better for r in rows[:3]] == ["choreography", "choreography", None]  # 3 % is even
    assert headline("order", rows) == (
        "Choreography for order: a 1.33x lower median latency and a 1.20x lower tail (p99). "
        "Orchestration gives 27% fewer Kafka messages and a definition change redeploys "
        "1 process(es), not 4."
    )
