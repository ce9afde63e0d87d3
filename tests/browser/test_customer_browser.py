"""The customer's signed links in a browser: notice, survey loop, remote signature, refusals."""

from __future__ import annotations

from datetime import timedelta

from browser_support import BROWSER, CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from playwright.sync_api import Browser, Page, expect, sync_playwright

from customers.customer_support import add_machine, make_machine, start, walk
from fleetup.api.deps import Server
from fleetup.core.clock import ManualClock
from fleetup.core.context import Ctx
from fleetup.customers import acceptances, notices, scheduled, surveys
from fleetup.customers.links import Links
from fleetup.upgrades import service as upgrades

pytestmark = BROWSER
PHONE = {"width": 375, "height": 812}


def _page(browser: Browser, lang: str) -> Page:
    context = browser.new_context(viewport=PHONE, locale=lang)
    return context.new_page()


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def _answer_survey(page: Page, url: str, score: int, comment: str) -> None:
    page.goto(url)
    page.locator(f"label.score:has(input[value='{score}'])").click()
    page.locator("#comment").fill(comment)
    page.locator("form.survey-form button[type='submit']").click()
    expect(page.locator("[data-answer='survey']")).to_be_visible()


def test_a_score_of_6_starts_the_loop_and_after_the_retest_a_9_closes_it(
    served: str, ctx: Ctx, server_parts: Server
) -> None:
    parts = server_parts
    serial = make_machine(ctx, "TC-0301")
    instance_id = start(ctx, parts.library, serial)
    walk(ctx, parts.library, instance_id, until="V")
    assert scheduled.open_due_surveys(parts) == 1
    ctx.session.expire_all()
    first = surveys.get_all(ctx.session, serial=serial)[0]
    first_url = served + surveys.survey_link(parts.signer, first)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            en = _page(browser, "en")
            en.goto(first_url)
            expect(en.locator("h1")).to_have_text("How satisfied are you with the upgrade?")
            _shot(en, "customer-survey-en.png")
            _answer_survey(en, first_url, 6, "The dashboard is slow")
            _shot(en, "customer-survey-thanks-en.png")

            ctx.session.expire_all()
            loop = upgrades.get(ctx.session, instance_id=first.instance_id)
            assert loop.current_node == "G"
            for kind, note, owner in (
                ("understanding", "dashboard slow over 4G", ""),
                ("improvement", "turn on the local cache", "tech-lin"),
                ("retest", "dashboard opens in 2 s", ""),
            ):
                surveys.record_staff_step(
                    ctx,
                    parts.library,
                    instance_id=loop.id,
                    kind=kind,
                    note=note,
                    owner=owner,
                    links=Links(parts.signer),
                )
            ctx.session.commit()
            second = surveys.get_all(ctx.session, serial=serial)[-1]
            assert second.round == 2

            zh = _page(browser, "zh-TW")
            second_url = served + surveys.survey_link(parts.signer, second)
            zh.goto(second_url)
            expect(zh.locator("h1")).to_have_text("您對本次升級滿意嗎？")
            _shot(zh, "customer-survey-zh-TW.png")
            _answer_survey(zh, second_url, 9, "改善後很好")
            _shot(zh, "customer-survey-thanks-zh-TW.png")

            for page, url, lang in ((en, first_url, "en"), (zh, second_url, "zh-TW")):
                response = page.goto(url)
                assert response is not None and response.status == 410
                expect(page.locator(".link-refused")).to_have_attribute("data-reason", "used")
                _shot(page, f"customer-link-used-{lang}.png")
            expect(zh.locator("h1")).to_have_text("此連結已使用過")
        finally:
            browser.close()

    ctx.session.expire_all()
    loop = upgrades.get(ctx.session, instance_id=first.instance_id)
    assert loop.status == "completed"
    assert [s.score for s in surveys.get_all(ctx.session, serial=serial)] == [6, 9]


def test_the_notice_is_confirmed_and_an_expired_link_is_refused_in_both_languages(
    served: str, ctx: Ctx, server_parts: Server, clock: ManualClock
) -> None:
    parts = server_parts
    serial = make_machine(ctx, "TC-0401")
    other = add_machine(ctx, "TC-0402")
    now = clock.now()
    for machine in (serial, other):
        notices.schedule_notice(
            ctx,
            serial=machine,
            visit_start=now + timedelta(days=4),
            visit_end=now + timedelta(days=4, hours=2),
            expected_minutes=65,
        )
    ctx.session.commit()
    clock.advance(timedelta(days=1, hours=1))
    assert scheduled.send_due_notices(parts) == 2
    visits = notices.get_all_visits(ctx.session)
    urls = [served + f"/n/{parts.signer.sign('notice', v.id)}" for v in visits]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            en, zh = _page(browser, "en"), _page(browser, "zh-TW")
            en.goto(urls[0])
            _shot(en, "customer-notice-en.png")
            en.get_by_role("button", name="Confirm this date").click()
            expect(en.locator("[data-answer='confirmed']")).to_be_visible()
            _shot(en, "customer-notice-confirmed-en.png")
            zh.goto(urls[1])
            _shot(zh, "customer-notice-zh-TW.png")
            zh.locator("#note").fill("希望改到下週三")
            zh.get_by_role("button", name="改約其他日期").click()
            expect(zh.locator("[data-answer='another_date']")).to_be_visible()
            _shot(zh, "customer-notice-another-date-zh-TW.png")

            ctx.session.expire_all()
            answers = {v.answer for v in notices.get_all_visits(ctx.session)}
            assert answers == {"confirmed", "another_date"}

            # The answered link is used; a rescheduled visit's new link expires at its start.
            response = en.goto(urls[0])
            assert response is not None and response.status == 410
            expect(en.locator("h1")).to_have_text("This link was used already")
            notices.schedule_notice(
                ctx,
                serial=serial,
                visit_start=clock.now() + timedelta(days=6),
                visit_end=clock.now() + timedelta(days=6, hours=2),
                expected_minutes=65,
            )
            ctx.session.commit()
            before = len(notices.get_all_visits(ctx.session))
            clock.advance(timedelta(days=7))
            fresh = notices.get_all_visits(ctx.session)[-1]
            expired_url = served + f"/n/{parts.signer.sign('notice', fresh.id)}"
            for page, lang, title in (
                (en, "en", "This link has expired"),
                (zh, "zh-TW", "此連結已過期"),
            ):
                response = page.goto(expired_url)
                assert response is not None and response.status == 410
                expect(page.locator("h1")).to_have_text(title)
                _shot(page, f"customer-link-expired-{lang}.png")
            assert len(notices.get_all_visits(ctx.session)) == before
            assert notices.get_visit(ctx.session, visit_id=fresh.id).answer == ""
        finally:
            browser.close()


def test_the_remote_signature_page_reads_in_both_languages(
    served: str, ctx: Ctx, server_parts: Server
) -> None:
    parts = server_parts
    serial = make_machine(ctx, "TC-0501")
    instance_id = start(ctx, parts.library, serial)
    walk(ctx, parts.library, instance_id, until="T")
    url = served + acceptances.link_for(ctx.session, signer=parts.signer, serial=serial)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for lang, button in (("zh-TW", "簽名並驗收"), ("en", "Sign and accept")):
                page = _page(browser, lang)
                page.goto(url)
                expect(page.get_by_role("button", name=button)).to_be_visible()
                _shot(page, f"customer-acceptance-sign-{lang}.png")
            canvas = page.locator("canvas[data-signature-pad]")
            box = canvas.bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + 30, box["y"] + 120)
            page.mouse.down()
            page.mouse.move(box["x"] + 200, box["y"] + 40, steps=12)
            page.mouse.move(box["x"] + 300, box["y"] + 150, steps=12)
            page.mouse.up()
            page.locator("#signer_name").fill("Chen Mei")
            page.get_by_role("button", name="Sign and accept").click()
            page.wait_for_url("**/c/*")
            expect(page.locator("img.signature-image")).to_be_visible()
            _shot(page, "customer-certificate-en.png")
            page.context.add_cookies([{"name": "lang", "value": "zh-TW", "url": served}])
            page.reload()
            expect(page.locator("h1")).to_have_text("升級驗收證明")
            _shot(page, "customer-certificate-zh-TW.png")
            pdf = page.context.request.get(page.url + "/pdf")
            assert pdf.status == 200 and pdf.body().startswith(b"%PDF-")
        finally:
            browser.close()
    ctx.session.expire_all()
    assert upgrades.get(ctx.session, instance_id=instance_id).current_node == "U"
