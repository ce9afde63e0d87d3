"""On a 375-px phone a technician walks a machine's manual steps; the customer signs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from browser_support import BROWSER, CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from playwright.sync_api import Page, expect, sync_playwright

from customers.customer_support import make_machine, walk
from fleetup.api.deps import Server
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.customers import notices
from fleetup.upgrades import service as upgrades
from support import Account

pytestmark = BROWSER
PHONE = {"width": 375, "height": 812}


@pytest.fixture
def planned(
    ctx: Ctx, server_parts: Server, make_account: Callable[..., Account]
) -> tuple[str, int, Account]:
    tech = make_account(Role.technician, "tech-lin")
    serial = make_machine(ctx, "TC-0201")
    now = ctx.now()
    notices.schedule_notice(
        ctx,
        serial=serial,
        visit_start=now + timedelta(hours=1),
        visit_end=now + timedelta(hours=3),
        expected_minutes=65,
        technician=tech.username,
    )
    instance = upgrades.start_upgrade(ctx, server_parts.library, serial=serial)
    ctx.session.commit()
    return serial, instance.id, tech


def _sign_in(page: Page, served: str, account: Account, target: str) -> None:
    page.goto(f"{served}/login?next={target}")
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{target}")


def _due(page: Page, node: str) -> object:
    item = page.locator(f"li.due-item[data-node='{node}']")
    expect(item).to_be_visible(timeout=15_000)
    return item


def _press(page: Page, node: str, selector: str) -> None:
    _due(page, node).locator(selector).click()  # type: ignore[attr-defined]
    page.wait_for_load_state()


def _at(page: Page, node: str) -> None:
    expect(page.locator(".tech-status")).to_have_attribute("data-current", node, timeout=15_000)


def _draw_signature(page: Page) -> None:
    canvas = page.locator("canvas[data-signature-pad]")
    box = canvas.bounding_box()
    assert box is not None
    x, y = box["x"], box["y"]
    page.mouse.move(x + 20, y + 150)
    page.mouse.down()
    for step in range(1, 30):
        page.mouse.move(x + 20 + step * 10, y + 150 - (step % 6) * 20, steps=2)
    page.mouse.up()


def _dark_pixels(page: Page) -> int:
    script = """img => { const c = document.createElement('canvas');
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      const g = c.getContext('2d'); g.drawImage(img, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height).data; let n = 0;
      for (let i = 0; i < d.length; i += 4) { if (d[i] < 128 && d[i + 3] > 0) n++; }
      return n; }"""
    return int(page.locator("img.signature-image").evaluate(script))


def test_a_technician_completes_the_manual_steps_on_a_phone_and_the_customer_signs(
    served: str,
    ctx: Ctx,
    server_parts: Server,
    planned: tuple[str, int, Account],
) -> None:
    serial, instance_id, tech = planned
    library = server_parts.library
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=PHONE, locale="en", accept_downloads=True)
            page = context.new_page()
            _sign_in(page, served, tech, "/technician")
            expect(page.locator(f"li[data-serial='{serial}']")).to_be_visible()
            page.screenshot(path=str(SCREENSHOTS / "technician-today-en.png"), full_page=True)
            page.locator(f"li[data-serial='{serial}'] a").click()
            _at(page, "B")
            page.screenshot(
                path=str(SCREENSHOTS / "technician-machine-at-B-en.png"), full_page=True
            )

            _press(page, "B", "button[data-outcome='yes']")
            _at(page, "C")
            # The agent checks the machine (C): the page fills it in by polling, no reload.
            walk(ctx, library, instance_id, until="E", only={"C"})
            _at(page, "E")
            _press(page, "E", "button[data-outcome='yes']")
            _at(page, "F")
            walk(ctx, library, instance_id, until="P")
            _at(page, "P")
            assert page.locator("tr[data-step='O'][data-status='done']").count() == 1
            _press(page, "P", "button[data-outcome='yes']")
            _at(page, "Q")
            _press(page, "Q", "button[data-action='start']")
            expect(_due(page, "Q").locator(".timer")).to_contain_text(" / 10:00")  # type: ignore[attr-defined]
            page.screenshot(
                path=str(SCREENSHOTS / "technician-training-running-en.png"), full_page=True
            )
            context.add_cookies([{"name": "lang", "value": "zh-TW", "url": served}])
            page.goto(f"{served}/technician")
            page.screenshot(path=str(SCREENSHOTS / "technician-today-zh-TW.png"), full_page=True)
            page.goto(f"{served}/technician/machines/{serial}")
            expect(page.locator(".tech-status")).to_contain_text("客戶培訓")
            page.screenshot(
                path=str(SCREENSHOTS / "technician-training-running-zh-TW.png"), full_page=True
            )
            context.add_cookies([{"name": "lang", "value": "en", "url": served}])
            page.goto(f"{served}/technician/machines/{serial}")
            _press(page, "G1", "button[data-action='check']")
            _due(page, "Q").locator("textarea").fill("開機、看板、推播設定")  # type: ignore[attr-defined]
            _press(page, "Q", "button[data-action='finish']")
            _at(page, "S")
            _press(page, "S", "button[data-action='start']")
            _press(page, "S", "button[data-action='finish']")
            _at(page, "T")

            _press(page, "T", "a[data-action='sign']")
            page.wait_for_url(f"**/technician/machines/{serial}/sign")
            page.get_by_label("Name of the person signing").fill("王小明")
            page.get_by_role("button", name="Sign and accept").click()
            expect(page.locator("[data-signature-empty]")).to_be_visible()
            _draw_signature(page)
            page.screenshot(path=str(SCREENSHOTS / "acceptance-sign-en.png"), full_page=True)
            page.get_by_role("button", name="Sign and accept").click()
            page.wait_for_url("**/acceptances/*/certificate")
            image = page.locator("img.signature-image")
            expect(image).to_be_visible()
            assert _dark_pixels(page) > 50
            page.screenshot(path=str(SCREENSHOTS / "acceptance-certificate-en.png"), full_page=True)
            with page.expect_download() as download:
                page.get_by_role("link", name="Download PDF").click()
            pdf = download.value.path().read_bytes()
            assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-1024:]
            page.emulate_media(media="print")
            expect(page.locator(".site-header")).to_be_hidden()
            page.screenshot(
                path=str(SCREENSHOTS / "acceptance-certificate-print-en.png"), full_page=True
            )
            page.emulate_media(media="screen")

            page.goto(f"{served}/technician/machines/{serial}")
            _at(page, "U")
            _press(page, "U", "button[data-action='start']")
            _due(page, "U").locator("input[name='text']").fill("王小明: 0800-000-123")  # type: ignore[attr-defined]
            _press(page, "U", "button[data-action='finish']")
            expect(page.locator(".tech-status")).to_have_attribute("data-status", "completed")

            context.add_cookies([{"name": "lang", "value": "zh-TW", "url": served}])
            page.goto(f"{served}/technician/machines/{serial}")
            expect(page.locator(".tech-status")).to_contain_text("升級完成")
            page.screenshot(
                path=str(SCREENSHOTS / "technician-machine-done-zh-TW.png"), full_page=True
            )
        finally:
            browser.close()

    ctx.session.expire_all()
    instance = upgrades.get(ctx.session, instance_id=instance_id)
    assert instance.status == "completed"
    people = {r.actor for r in upgrades.transitions(ctx.session, instance_id=instance_id)}
    assert tech.username in " ".join(people)
