"""The machine page draws the machine's upgrade on chart 2 and follows it live."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from browser_support import BROWSER, CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from fastapi.testclient import TestClient
from playwright.sync_api import expect, sync_playwright

from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.fleet import service
from fleetup.fleet.schemas import CustomerIn, MachineIn, SiteIn
from support import Account

pytestmark = BROWSER
SERIAL = "TC-0101"


@pytest.fixture
def machine(ctx: Ctx) -> str:
    service.create_customer(ctx, CustomerIn(code="C01", name="精密機械股份有限公司"))
    service.create_site(ctx, SiteIn(customer_code="C01", code="S1", name="台中一廠"))
    data = MachineIn(
        serial=SERIAL, model="CNC-500", ipc_os="Win10", customer_code="C01", site_code="S1"
    )
    service.create_machine(ctx, data)
    ctx.session.commit()
    return SERIAL


def _current_node(page: object) -> str:
    # Mermaid names each drawn node "...flowchart-<ID>-<n>"; the current one has our class.
    found = page.locator("pre.mermaid svg g.node.current").first  # type: ignore[attr-defined]
    expect(found).to_be_visible(timeout=15_000)
    match = re.search(r"flowchart-([A-Za-z0-9_]+)-\d+$", str(found.get_attribute("id")))
    assert match is not None, found.get_attribute("id")
    return match.group(1)


def test_the_chart_highlights_the_current_step_and_moves_when_an_event_arrives(
    served: str,
    machine: str,
    client: TestClient,
    make_account: Callable[..., Account],
) -> None:
    tech = make_account(Role.technician)
    started = client.post(f"/api/v1/machines/{machine}/upgrades", headers=tech.headers)
    assert started.status_code == 201
    instance = started.json()["id"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 375, "height": 812}, locale="en")
            page = context.new_page()
            page.goto(f"{served}/login?next=/machines/{machine}")
            page.get_by_label("Username").fill(tech.username)
            page.get_by_label("Password").fill(tech.password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"**/machines/{machine}")

            assert _current_node(page) == "B"
            status = page.locator(".upgrade__status")
            expect(status).to_have_attribute("data-current", "B")
            page.screenshot(path=str(SCREENSHOTS / "upgrade-chart-at-B-en.png"), full_page=True)

            answer = {"type": "decision_taken", "node": "B", "outcome": "yes"}
            posted = client.post(
                f"/api/v1/sop/instances/{instance}/events", json=answer, headers=tech.headers
            )
            assert posted.status_code == 200

            expect(status).to_have_attribute("data-current", "C", timeout=15_000)
            assert _current_node(page) == "C"
            visited = page.locator("pre.mermaid svg g.node.visited")
            expect(visited.first).to_be_visible()
            page.screenshot(path=str(SCREENSHOTS / "upgrade-chart-at-C-en.png"), full_page=True)
        finally:
            browser.close()
