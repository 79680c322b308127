"""The dashboard, live, in each mode: the list, then one workflow from its first attempt
to its compensation, step by step.

Each handler of the `checkout` workflow waits at a gate (`gates.py`); the test opens
one gate at a time and waits, with Playwright's expectations, for the page to show
what that step changed: the DAG's node states, the timeline's bars and backoff gap,
the attempts' rows. Nothing waits on a clock.
"""

from __future__ import annotations

from typing import Any

import pytest

from podium.events import Mode
from tests.browser.conftest import SCREENSHOTS, Dashboard

expect: Any = pytest.importorskip("playwright.async_api").expect

#: how long any expectation waits for the page (the API is read within a second)
WAIT_MS = 10_000


async def node_state(page: Any, task: str, state: str, compensation: str = "") -> None:
    """Wait until the DAG draws `task` in `state` (and with this compensation state)."""
    await page.wait_for_function(
        """([task, state, compensation]) => {
            const node = window.podiumDashboard.graph?.getElementById(task);
            return node?.nonempty() && node.data("state") === state
                && node.data("compensation") === compensation;
        }""",
        arg=[task, state, compensation],
        timeout=WAIT_MS,
    )


async def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
async def test_a_workflow_is_followed_live_from_the_list_to_its_compensation(
    dashboard: Dashboard, page: Any, mode: Mode
) -> None:
    page.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    workflow_id = await dashboard.start(mode, {"sku": "A-1", "amount": 5000})
    other = next(m for m in Mode if m != mode).value

    # the list: the workflow, running, with its mode's badge; counts; the mode filter
    await page.goto(dashboard.url)
    row = page.locator(f'#workflows tr[data-workflow-id="{workflow_id}"]')
    await expect(row.locator("td").first).to_have_text(workflow_id)  # the id in full
    await expect(row.locator(".badge.state")).to_have_text("Running")
    await expect(row.locator(".badge.mode")).to_have_text(mode.value)
    await expect(page.locator('#counts [data-state="Running"] b')).not_to_have_text("0")
    await page.locator('#filters select[name="mode"]').select_option(mode.value)
    await expect(page).to_have_url(f"{dashboard.url}#/?mode={mode.value}")
    await expect(row).to_be_visible()
    await expect(page.locator("#workflows .badge.mode", has_text=other)).to_have_count(0)
    await screenshot(page, f"{mode.value}-1-list")

    # its page: reserve's first attempt runs
    await row.get_by_role("link", name=workflow_id).click()
    await expect(page.locator("#workflow-id")).to_have_text(workflow_id)
    await expect(page.locator("#workflow-mode")).to_have_text(mode.value)
    await expect(page.locator("#workflow-state")).to_have_text("Running")
    attempts = page.locator("#attempts tbody tr")
    bars = page.locator("#timeline .vis-item.attempt")
    await node_state(page, "reserve", "Running")
    await node_state(page, "charge", "Pending")
    await expect(attempts).to_have_count(1)
    await expect(bars).to_have_count(1)
    tasks = page.locator("#tasks tbody tr")
    await expect(tasks).to_have_count(3)
    await expect(tasks.locator(".task-id")).to_have_text(["reserve", "charge", "ship"])

    # it fails and is retried after its backoff: two bars with the gap between them
    dashboard.open_gate(workflow_id, "reserve-1")
    first = page.locator('#attempts tr[data-task="reserve"][data-attempt="1"]')
    await expect(first).to_have_attribute("data-state", "Failed")
    await expect(first).to_contain_text("inventory busy")
    second = page.locator('#attempts tr[data-task="reserve"][data-attempt="2"]')
    await expect(second).to_have_attribute("data-state", "Running")
    await expect(second).to_contain_text('"sku": "A-1"')  # the attempt's input
    await node_state(page, "reserve", "Running")
    await expect(bars).to_have_count(2)
    await expect(page.locator("#timeline .vis-item.backoff")).to_have_count(1)
    await expect(page.locator("#timeline .vis-item.backoff")).to_contain_text("backoff")
    await screenshot(page, f"{mode.value}-2-retried")

    # reserve succeeds; charge runs
    dashboard.open_gate(workflow_id, "reserve-2")
    await node_state(page, "reserve", "Succeeded")
    await node_state(page, "charge", "Running")
    await expect(second).to_have_attribute("data-state", "Succeeded")
    await expect(second).to_contain_text('"reservation": "r-A-1"')  # its output
    await expect(bars).to_have_count(3)

    # charge fails for good: reserve is undone
    dashboard.open_gate(workflow_id, "charge")
    await node_state(page, "charge", "Failed")
    await node_state(page, "reserve", "Succeeded", compensation="Running")
    undo = page.locator('#attempts tr.compensation[data-task="reserve"]')
    await expect(undo).to_have_attribute("data-state", "Running")
    await expect(page.locator("#workflow-state")).to_have_text("Compensating")
    await expect(page.locator("#timeline .vis-item.attempt.compensation")).to_have_count(1)
    await expect(bars).to_have_count(4)
    await screenshot(page, f"{mode.value}-3-compensating")

    dashboard.open_gate(workflow_id, "release")
    await expect(page.locator("#workflow-state")).to_have_text("Compensated")
    await node_state(page, "reserve", "Succeeded", compensation="Succeeded")
    await node_state(page, "ship", "Pending")
    await expect(undo).to_have_attribute("data-state", "Succeeded")
    await expect(undo).to_contain_text('"released": "r-A-1"')
    reserve = page.locator('#tasks tr[data-task="reserve"] [data-compensation]')
    await expect(reserve).to_have_attribute("data-compensation", "Succeeded")
    await expect(page.locator('#attempts tr[data-task="charge"]')).to_contain_text("card declined")
    await expect(page.locator("#cancel")).to_be_hidden()
    await screenshot(page, f"{mode.value}-4-compensated")

    # back to the list: the workflow has ended there too
    await page.locator("a.back").click()
    await expect(row.locator(".badge.state")).to_have_text("Compensated")
    await expect(page.locator('#counts [data-state="Compensated"] b')).not_to_have_text("0")


async def test_a_running_workflow_is_cancelled_from_its_page(
    dashboard: Dashboard, page: Any
) -> None:
    """Orchestration: the conductor decides the retries, so once it has taken the cancel
    no attempt follows the running one."""
    page.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    mode = Mode.ORCHESTRATION
    workflow_id = await dashboard.start(mode, {"sku": "C-3", "amount": 10})
    await page.goto(f"{dashboard.url}#/workflows/{workflow_id}")
    await node_state(page, "reserve", "Running")
    page.once("dialog", lambda dialog: dialog.accept())  # "Cancel workflow <id>?"
    async with page.expect_response(f"**/api/workflows/{workflow_id}/cancel") as answer:
        await page.locator("#cancel").click()
    assert (await answer.value).status == 202
    await dashboard.cancel_taken(mode, workflow_id)
    dashboard.open_gate(workflow_id, "reserve-1")  # the running attempt fails; no retry
    await expect(page.locator("#workflow-state")).to_have_text("Cancelled")
    await expect(page.locator("#cancel")).to_be_hidden()
    await expect(page.locator("#attempts tbody tr")).to_have_count(1)
    await node_state(page, "charge", "Pending")
    await expect(page.locator("#workflow-data")).to_contain_text("cancelled from the dashboard")
    await screenshot(page, "orchestration-5-cancelled")
