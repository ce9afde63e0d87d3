"""A wave's visit reaches the technician's phone; their finished machine shows on the
manager's dashboard."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from browser_support import BROWSER, CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from playwright.sync_api import Page, expect, sync_playwright

from customers.customer_support import walk
from fleetup.api.deps import Server
from fleetup.campaigns import service as campaigns
from fleetup.campaigns import waves
from fleetup.campaigns.scheduled import check_gates
from fleetup.campaigns.schemas import CampaignIn, Selection, WaveUpdate
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import CustomerIn, MachineIn, MaintenanceWindow, SiteIn
from fleetup.releases import service as releases
from fleetup.upgrades import service as upgrades
from fleetup.upgrades.library import SopLibrary
from releases.release_helpers import make_package
from support import Account

pytestmark = BROWSER
PHONE = {"width": 375, "height": 812}
SERIAL = "HS-CNC-001"


def _sign_in(page: Page, served: str, account: Account, target: str) -> None:
    page.goto(f"{served}/login?next={target}")
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{target}")


def _campaign_with_one_machine(
    ctx: Ctx, settings: Settings, library: SopLibrary, tmp_path: Path
) -> int:
    fleet.create_customer(ctx, CustomerIn(code="HS", name="宏昇機械"))
    any_time = MaintenanceWindow(days=[0, 1, 2, 3, 4, 5, 6], start="00:00", end="24:00")
    fleet.create_site(
        ctx, SiteIn(customer_code="HS", code="T1", name="台中廠", maintenance_windows=[any_time])
    )
    fleet.create_machine(
        ctx,
        MachineIn(serial=SERIAL, model="CNC-5", ipc_os="linux", customer_code="HS", site_code="T1"),
    )
    package = make_package(tmp_path / "ipc.tar.gz", version="2.0.0", files={"bin/run": b"x"})
    releases.add(ctx, settings, path=package, version="2.0.0")
    campaign = campaigns.create_from_template(
        ctx,
        library,
        CampaignIn(name="Pilot", release_version="2.0.0", starts_on=date(2026, 3, 2)),
    )
    waves.update_wave(
        ctx,
        campaign_id=campaign.id,
        code="D1",
        data=WaveUpdate(selection=Selection(kind="count", count=1), planned_start=ctx.now()),
    )
    campaigns.start(ctx, campaign_id=campaign.id)
    ctx.session.commit()
    return campaign.id


def test_the_technicians_finished_machine_shows_on_the_managers_dashboard(
    served: str,
    ctx: Ctx,
    settings: Settings,
    server_parts: Server,
    tmp_path: Path,
    make_account: Callable[..., Account],
) -> None:
    tech = make_account(Role.technician, "tech-chen")
    manager = make_account(Role.manager, "manager-lin")
    campaign_id = _campaign_with_one_machine(ctx, settings, server_parts.library, tmp_path)
    check_gates(server_parts)  # D1 starts: a visit for the one technician, a deployment
    machine = fleet.get_machine(ctx.session, serial=SERIAL)
    instance = upgrades.active_upgrade(ctx.session, machine_id=machine.id)
    assert instance is not None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            phone = browser.new_context(viewport=PHONE, locale="en").new_page()
            _sign_in(phone, served, tech, "/technician")
            expect(phone.locator(f"li[data-serial='{SERIAL}']")).to_be_visible()
            phone.locator(f"li[data-serial='{SERIAL}'] a").click()
            expect(phone.locator(".tech-status")).to_have_attribute("data-current", "B")
            phone.locator("li.due-item[data-node='B'] button[data-outcome='yes']").click()
            expect(phone.locator(".tech-status")).to_have_attribute("data-current", "C")
            ctx.session.expire_all()  # the page moved the upgrade in its own session
            walk(ctx, server_parts.library, instance.id, until="V")
            expect(phone.locator(".tech-status")).to_have_attribute(
                "data-status", "completed", timeout=15_000
            )

            desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en")
            dashboard = desk.new_page()
            _sign_in(dashboard, served, manager, f"/campaigns/{campaign_id}")
            card = dashboard.locator("#wave-D1")
            expect(card.locator("[data-count='succeeded']")).to_have_text("0")
            check_gates(server_parts)  # the worker sees the machine's upgrade complete
            expect(card.locator("[data-count='succeeded']")).to_have_text("1", timeout=15_000)
            expect(card).to_have_attribute("data-status", "completed")
            dashboard.screenshot(
                path=str(SCREENSHOTS / "campaign-after-technician-en.png"), full_page=True
            )
        finally:
            browser.close()
