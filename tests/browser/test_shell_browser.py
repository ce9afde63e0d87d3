"""The web shell in Debian's chromium at a phone's width: sign in, switch language, filter.

A real uvicorn server runs in a thread against the test's migrated database; Playwright drives
/usr/bin/chromium (never a downloaded browser). Screenshots go to test-results/screenshots/.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from browser_support import BROWSER, CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS

from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.fleet import service
from fleetup.fleet.schemas import ContactIn, CustomerIn, MachineIn, MaintenanceWindow, SiteIn
from support import Account

pytestmark = BROWSER

CUSTOMERS = [
    ("C01", "精密機械股份有限公司", [("S1", "台中一廠"), ("S2", "台中二廠")]),
    ("C02", "高雄鋼鐵工業", [("S1", "高雄總廠")]),
    ("C03", "新竹電子材料", [("HQ", "新竹科學園區廠")]),
]
MACHINES = [
    ("TC-0001", "C01", "S1", "on_old_system"),
    ("TC-0002", "C01", "S1", "migrating"),
    ("TC-0003", "C01", "S2", "on_new_platform"),
    ("TC-0004", "C01", "S2", "on_old_system"),
    ("KH-0001", "C02", "S1", "on_new_platform"),
    ("KH-0002", "C02", "S1", "retired"),
    ("HC-0001", "C03", "HQ", "migrating"),
]


def _seed(ctx: Ctx) -> None:
    window = MaintenanceWindow(days=[5, 6], start="22:00", end="06:00")
    for code, name, sites in CUSTOMERS:
        contact = ContactIn(name="林美華", phone="0912-345-678", email="mei@example.com")
        service.create_customer(ctx, CustomerIn(code=code, name=name, contacts=[contact]))
        for site_code, site_name in sites:
            service.create_site(
                ctx,
                SiteIn(
                    customer_code=code,
                    code=site_code,
                    name=site_name,
                    address="台灣",
                    maintenance_windows=[window],
                ),
            )
    for serial, customer, site, state in MACHINES:
        data = {
            "serial": serial,
            "model": "CNC-500",
            "ipc_os": "Windows 10 IoT",
            "customer_code": customer,
            "site_code": site,
            "program_version": "3.2.1" if state == "on_new_platform" else "",
            "state": state,
        }
        service.create_machine(ctx, MachineIn.model_validate(data))
    ctx.session.commit()


@pytest.fixture
def live_server(served: str, ctx: Ctx) -> str:
    """The served app, with a small fleet in its database."""
    _seed(ctx)
    return served


def test_technician_signs_in_switches_language_and_filters_on_a_phone(
    live_server: str, make_account: Callable[..., Account]
) -> None:
    from playwright.sync_api import expect, sync_playwright

    account = make_account(Role.technician)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-TW")
            page = context.new_page()
            rows = page.locator("tr[data-serial]")

            # Not signed in: the list sends us to the sign-in page, in Chinese.
            page.goto(f"{live_server}/machines")
            expect(page).to_have_url(f"{live_server}/login?next=%2Fmachines")
            expect(page.locator("html")).to_have_attribute("lang", "zh-Hant-TW")
            expect(page.get_by_role("heading", level=1)).to_have_text("登入")
            page.get_by_label("帳號").fill(account.username)
            page.get_by_label("密碼").fill("not the password")
            page.get_by_role("button", name="登入").click()
            expect(page.get_by_role("alert")).to_contain_text("帳號或密碼錯誤")
            page.screenshot(path=SCREENSHOTS / "login-error-zh-TW.png", full_page=True)

            page.get_by_label("密碼").fill(account.password)
            page.get_by_role("button", name="登入").click()
            expect(page).to_have_url(f"{live_server}/machines")
            expect(page.get_by_role("heading", level=1)).to_have_text("機台")
            expect(rows).to_have_count(len(MACHINES))
            expect(page.get_by_text("現場工程師")).to_be_visible()
            page.screenshot(path=SCREENSHOTS / "machines-zh-TW.png", full_page=True)

            # English, and back.
            page.get_by_role("link", name="English").click()
            expect(page.locator("html")).to_have_attribute("lang", "en")
            expect(page.get_by_role("heading", level=1)).to_have_text("Machines")
            expect(page.get_by_role("button", name="Sign out")).to_be_visible()
            expect(page.get_by_text("Field technician")).to_be_visible()
            page.screenshot(path=SCREENSHOTS / "machines-en.png", full_page=True)
            page.get_by_role("link", name="中文").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("機台")
            expect(page.get_by_role("button", name="登出")).to_be_visible()

            # Filtering swaps the rows in place and keeps the address in step.
            page.get_by_label("客戶").select_option("C02")
            expect(rows).to_have_count(2)
            expect(page).to_have_url(f"{live_server}/machines?customer=C02&site=&state=&q=")
            expect(page.locator("#machine-results")).to_contain_text("高雄總廠")
            page.get_by_label("狀態").select_option("retired")
            expect(rows).to_have_count(1)
            expect(rows.first).to_have_attribute("data-serial", "KH-0002")
            page.get_by_label("客戶").select_option("")
            page.get_by_label("狀態").select_option("")
            page.get_by_label("序號或舊系統編號").press_sequentially("TC-000")
            expect(rows).to_have_count(4)
            page.screenshot(path=SCREENSHOTS / "machines-filtered-zh-TW.png", full_page=True)

            # At 375 px nothing runs off the side of the screen.
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"the page is {width} px wide at a 375 px viewport"

            # Switching language after filtering keeps the filters.
            page.get_by_role("link", name="English").click()
            expect(page.get_by_label("Serial or old-system ID")).to_have_value("TC-000")
            expect(rows).to_have_count(4)

            # The keyboard reaches the skip link first, and a machine's page opens.
            page.keyboard.press("Tab")
            expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
            page.get_by_role("link", name="TC-0002").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("TC-0002")
            expect(page.get_by_text("22:00–06:00 (ends the next day)")).to_be_visible()
            page.screenshot(path=SCREENSHOTS / "machine-en.png", full_page=True)

            # On a desktop the cards become a table with column headings again.
            page.set_viewport_size({"width": 1280, "height": 800})
            page.goto(f"{live_server}/machines")
            expect(page.get_by_role("columnheader", name="Serial")).to_be_visible()
            page.screenshot(path=SCREENSHOTS / "machines-desktop-en.png", full_page=True)
        finally:
            browser.close()
