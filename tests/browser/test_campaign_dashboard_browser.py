"""The campaign dashboard in chromium: the Gantt and the waves, live counts, both languages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from browser_support import BROWSER, CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect, sync_playwright

from campaigns.conftest import settle
from fleetup.api.deps import Server
from fleetup.campaigns.scheduled import check_gates
from fleetup.core.clock import ManualClock
from support import Account

pytestmark = BROWSER
pytest_plugins = ["campaigns.conftest"]
WIDTHS = {"wide": (1280, 900), "phone": (375, 812)}


@pytest.fixture
def waiting(
    client: TestClient, manager: Account, campaign: dict[str, Any], clock: ManualClock
) -> dict[str, Any]:
    """The campaign running, its wave D1 (4 machines) due in an hour."""
    url = f"/api/v1/campaigns/{campaign['id']}"
    start = (clock.now() + timedelta(hours=1)).isoformat()
    body = {"selection": {"kind": "count", "count": 4}, "planned_start": start}
    assert client.patch(f"{url}/waves/D1", headers=manager.headers, json=body).status_code == 200
    assert client.post(f"{url}/start", headers=manager.headers).status_code == 200
    return campaign


def _shoot(page: Page, base: str, campaign_id: int, lang: str) -> None:
    for name, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{base}/campaigns/{campaign_id}")
        expect(page.locator(".gantt__row[data-code='D1']")).to_be_visible()
        page.screenshot(
            path=str(SCREENSHOTS / f"campaign-dashboard-{lang}-{name}.png"), full_page=True
        )
        page.goto(f"{base}/campaigns/{campaign_id}/report")
        expect(page.locator("tr[data-wave='D1']")).to_be_visible()
        page.screenshot(
            path=str(SCREENSHOTS / f"campaign-report-{lang}-{name}.png"), full_page=True
        )


def test_wave_counts_follow_the_campaign_without_a_reload(
    served: str,
    waiting: dict[str, Any],
    manager: Account,
    client: TestClient,
    clock: ManualClock,
    server_parts: Server,
) -> None:
    # ``served`` runs the app of ``server_parts``: advancing its clock and running the
    # campaign job here is what the worker would do on the served server.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    campaign_id = waiting["id"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en")
            page = context.new_page()
            page.goto(f"{served}/login?next=/campaigns")
            page.get_by_label("Username").fill(manager.username)
            page.get_by_label("Password").fill(manager.password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"**/campaigns/{campaign_id}")

            expect(page.get_by_role("heading", name="Plan and progress")).to_be_visible()
            expect(page.locator(".gantt__row")).to_have_count(
                1 + 5 + 15
            )  # scale, phases, activities
            card = page.locator("#wave-D1")
            expect(card).to_have_attribute("data-status", "planned")
            expect(card.locator("[data-count='total']")).to_have_text("0")
            page.evaluate("window.notReloaded = true")
            now_line = page.locator(".gantt__row[data-code='D1'] .gantt__now")
            line_at = now_line.get_attribute("x1")

            clock.advance(timedelta(hours=1))
            assert check_gates(server_parts) == 1
            # The Gantt polls as the wave board does: its line of now moves on its own.
            expect(now_line).not_to_have_attribute("x1", line_at or "", timeout=15_000)
            expect(card).to_have_attribute("data-status", "running", timeout=15_000)
            expect(card.locator("[data-count='total']")).to_have_text("4")
            expect(page.locator(".gate-event[data-kind='started']")).to_be_visible()

            members = client.get(
                f"/api/v1/campaigns/{campaign_id}/waves/D1/members", headers=manager.headers
            ).json()
            settle(server_parts, members[0]["serial"], "succeeded")
            check_gates(server_parts)
            succeeded = page.locator("#wave-D1 [data-count='succeeded']")
            expect(succeeded).to_have_text("1", timeout=15_000)
            # Polling swapped the live part in place: the page itself was never reloaded.
            assert page.evaluate("window.notReloaded === true")

            # While the Gantt's table is open the Gantt is not swapped, so it stays open.
            table = page.locator("#campaign-gantt details")
            table.locator("summary").click()
            line_at = now_line.get_attribute("x1")
            clock.advance(timedelta(days=1))
            page.wait_for_timeout(4_000)  # longer than a poll's interval
            expect(table).to_have_attribute("open", "")
            assert now_line.get_attribute("x1") == line_at
            table.locator("summary").click()
            expect(now_line).not_to_have_attribute("x1", line_at or "", timeout=15_000)

            # A finished wave's card, shorter than its neighbours with their forms, keeps its
            # badges at their own height instead of stretching them to the row's.
            for member in members[1:]:
                settle(server_parts, member["serial"], "succeeded")
            check_gates(server_parts)
            expect(card).to_have_attribute("data-status", "completed", timeout=15_000)
            expect(card.locator("form")).to_have_count(0)  # nothing left to decide
            for badge in card.locator(".badge").all():
                box = badge.bounding_box()
                assert box is not None and box["height"] < 40, box

            # A manager changing a wave's plan keeps what they typed while the board moves.
            plan = page.locator("#wave-E1 details.wave-plan:not(.wave-plan--join)")
            plan.locator("summary").click()
            page.locator("#count-E1").fill("12")
            aborted = client.post(
                f"/api/v1/campaigns/{campaign_id}/waves/E3/abort",
                headers=manager.headers,
                json={"reason": "merged into E2"},
            )
            assert aborted.status_code == 200, aborted.text
            page.wait_for_timeout(4_000)  # longer than a poll's interval
            expect(plan).to_have_attribute("open", "")
            expect(page.locator("#count-E1")).to_have_value("12")
            page.locator("#wave-E1").get_by_role("button", name="Save the plan").click()
            expect(page.get_by_role("status")).to_contain_text("Wave E1: the plan is saved.")
            expect(page.locator("#wave-E1 [data-plan='takes']")).to_have_text("Takes: 12 machines")
            expect(page.locator("#wave-E3")).to_have_attribute("data-status", "aborted")

            _shoot(page, served, campaign_id, "en")
            context.add_cookies([{"name": "lang", "value": "zh-TW", "url": served}])
            _shoot(page, served, campaign_id, "zh-TW")
            expect(page.locator("html")).to_have_attribute("lang", "zh-Hant-TW")
        finally:
            browser.close()
