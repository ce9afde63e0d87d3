"""The machine list, its live filters, and one machine's page."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from support import Account

EN = {"Accept-Language": "en"}
ROW = re.compile(r'<tr data-serial="([^"]+)">')


def _serials(html: str) -> list[str]:
    return ROW.findall(html)


def test_list_shows_every_machine_without_filters(client: TestClient, technician: Account) -> None:
    page = client.get("/machines")
    assert page.status_code == 200
    assert _serials(page.text) == ["M-1001", "M-1002", "M-1003", "M-2001", "M-2002"]
    assert 'hx-get="/machines"' in page.text and 'hx-push-url="true"' in page.text


def test_list_filtered_by_customer_returns_only_its_machines(
    client: TestClient, technician: Account
) -> None:
    page = client.get("/machines?customer=C02")
    assert _serials(page.text) == ["M-2001", "M-2002"]
    assert '<option value="C02" selected>' in page.text


def test_list_filtered_by_state_returns_only_machines_in_that_state(
    client: TestClient, technician: Account
) -> None:
    page = client.get("/machines?state=on_new_platform")
    assert _serials(page.text) == ["M-1003", "M-2002"]
    both = client.get("/machines?customer=C01&state=on_new_platform")
    assert _serials(both.text) == ["M-1003"]


def test_site_filter_tells_apart_two_customers_sites_with_the_same_code(
    client: TestClient, technician: Account
) -> None:
    assert _serials(client.get("/machines?site=C02/S1").text) == ["M-2001", "M-2002"]
    assert _serials(client.get("/machines?site=C01/S1").text) == ["M-1001", "M-1002"]
    # A site of another customer than the one chosen matches nothing.
    mismatch = client.get("/machines?customer=C01&site=C02/S1", headers=EN)
    assert _serials(mismatch.text) == []
    assert "No machine matches these filters." in mismatch.text


def test_search_matches_part_of_a_serial(client: TestClient, technician: Account) -> None:
    assert _serials(client.get("/machines?q=100").text) == ["M-1001", "M-1002", "M-1003"]


def test_unknown_state_is_ignored_rather_than_an_error(
    client: TestClient, technician: Account
) -> None:
    page = client.get("/machines?state=exploded&offset=-3")
    assert page.status_code == 200
    assert len(_serials(page.text)) == 5


def test_htmx_request_gets_only_the_rows_and_the_updated_language_switch(
    client: TestClient, technician: Account
) -> None:
    partial = client.get("/machines?customer=C01&state=migrating", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert "<html" not in partial.text and 'id="machine-filter"' not in partial.text
    assert _serials(partial.text) == ["M-1002"]
    assert 'hx-swap-oob="true"' in partial.text
    assert "next=/machines%3Fcustomer%3DC01%26state%3Dmigrating" in partial.text
    assert partial.headers["vary"] == "HX-Request"


def test_history_restore_gets_the_whole_page(client: TestClient, technician: Account) -> None:
    restore = client.get(
        "/machines?customer=C01",
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in restore.text
    assert _serials(restore.text) == ["M-1001", "M-1002", "M-1003"]


def test_every_filter_input_has_a_label(client: TestClient, technician: Account) -> None:
    page = client.get("/machines").text
    for control in re.findall(r'<(?:input|select)[^>]*\bid="([^"]+)"', page):
        assert f'<label for="{control}">' in page, f"#{control} has no label"


def test_machine_page_shows_site_customer_contacts_and_windows(
    client: TestClient, technician: Account
) -> None:
    page = client.get("/machines/M-1001", headers=EN)
    assert page.status_code == 200
    text = page.text
    assert "<h1>M-1001</h1>" in text
    assert "精密機械股份有限公司 (C01)" in text and "台中一廠 (S1)" in text
    assert "王小明" in text and 'href="tel:04-2345-6789"' in text and "LINE: wang.ming" in text
    assert "Sat, Sun" in text and "22:00–06:00 (ends the next day)" in text
    assert 'class="state state--on_old_system">On the old system' in text


def test_machine_page_for_an_unknown_serial_is_a_friendly_404(
    client: TestClient, technician: Account
) -> None:
    english = client.get("/machines/NO-SUCH-1", headers=EN)
    assert english.status_code == 404
    assert "text/html" in english.headers["content-type"]
    assert "<h1>Machine not found</h1>" in english.text
    assert "There is no machine with serial NO-SUCH-1." in english.text
    assert 'href="/machines"' in english.text
    chinese = client.get("/machines/NO-SUCH-1")
    assert "沒有序號為 NO-SUCH-1 的機台" in chinese.text


def test_serial_in_the_404_page_is_escaped(client: TestClient, technician: Account) -> None:
    page = client.get("/machines/%3Cb%20onclick%3Dx%3Ebold")
    assert page.status_code == 404
    assert "<b onclick=x>" not in page.text
    assert "&lt;b onclick=x&gt;bold" in page.text
