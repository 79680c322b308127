"""`podium compare` as a user runs it: a real process, both modes on the in-memory bus.

The order saga with a fifth of its charges declined for good (compensated) and a tenth of
all attempts failing retryably (`--fail-rate`): the JSON has both modes with their
percentiles, the outcome counts add up to `--runs` and nothing is lost; the HTML report
opens in a headless Chromium (Debian's; skipped without one) and draws its three charts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_usage_errors_exit_2() -> None:
    """Refused before anything starts (in this process: no broker, no workflow)."""
    from typer.testing import CliRunner

    from podium.cli import app

    base = ["compare", "examples/order/order.yaml", "--services", "examples.order.shop:services"]
    runner = CliRunner()
    killed = runner.invoke(app, [*base, "--kill", "payments@2"])
    assert killed.exit_code == 2 and "not yet supported" in killed.stderr
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
            # the CDF draws one line per mode
            assert await page.locator("#chart-0 .scatterlayer .trace").count() == 2
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "compare-report.png"), full_page=True)
            assert not errors, errors
        finally:
            await browser.close()
