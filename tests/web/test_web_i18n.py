"""Languages: the catalog covers every string, and each visitor gets the language they chose."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from jinja2.ext import babel_extract

import fleetup.web
from fleetup.core.i18n import CATALOGS
from support import Account

WEB = Path(fleetup.web.__file__).parent
PACKAGE = WEB.parent
PO_FILES = sorted((CATALOGS / "zh_TW" / "LC_MESSAGES").glob("*.po"))
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None}


def _extracted(root: Path = WEB) -> dict[str | tuple[str, ...], str]:
    """Every message marked for translation under ``root``, with where it was found."""
    found: dict[str | tuple[str, ...], str] = {}
    sources = [("python", path) for path in sorted(root.rglob("*.py"))]
    sources += [(babel_extract, path) for path in sorted(root.rglob("templates/**/*.html"))]
    for method, path in sources:
        with path.open("rb") as handle:
            for lineno, message, _comments, _context in extract(method, handle, keywords=KEYWORDS):
                key = tuple(m for m in message if m) if isinstance(message, tuple) else message
                found.setdefault(key, f"{path.relative_to(root)}:{lineno}")
    return found


def _catalogs() -> list[tuple[str, Catalog]]:
    found = []
    for path in PO_FILES:
        with path.open("rb") as handle:
            found.append((path.name, read_po(handle, locale="zh_TW")))
    return found


def _catalog() -> Catalog:
    """Every area's catalog merged, as the running server sees them."""
    merged = Catalog(locale="zh_TW")
    for _name, catalog in _catalogs():
        for message in catalog:
            if message.id and not message.fuzzy and message.string:
                merged[message.id] = message
    return merged


def test_every_web_string_has_a_zh_tw_translation() -> None:
    extracted = _extracted()
    catalog = _catalog()
    assert len(extracted) > 50, "the extractor found too few strings; is it reading the files?"
    missing = []
    for msgid, where in extracted.items():
        key = msgid[0] if isinstance(msgid, tuple) else msgid
        entry = catalog.get(key)
        strings = entry.string if entry is not None else None
        translated = [strings] if isinstance(strings, str) else list(strings or [])
        if entry is None or entry.fuzzy or not translated or not all(translated):
            missing.append(f"{where}: {key!r}")
    assert not missing, "add these to the area's .po (see docs/web.md):\n" + "\n".join(missing)


def test_catalogs_have_no_stale_or_broken_entries() -> None:
    extracted = {m[0] if isinstance(m, tuple) else m for m in _extracted(PACKAGE)}
    for name, catalog in _catalogs():
        ids = sorted(m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id)
        stale = [msgid for msgid in ids if msgid not in extracted]
        assert not stale, f"{name} has strings nothing uses any more: {stale}"
        broken = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check()]
        assert not broken, f"{name}: translations whose placeholders do not match: {broken}"


def test_login_page_speaks_traditional_chinese_by_default(client: TestClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    assert '<html lang="zh-Hant-TW">' in page.text
    assert "<h1>登入</h1>" in page.text
    assert 'for="username">帳號</label>' in page.text
    assert "English" in page.text  # the switch names the other language in its own words


def test_login_page_speaks_english_to_an_english_browser(client: TestClient) -> None:
    page = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in page.text
    assert "<h1>Sign in</h1>" in page.text
    assert 'for="username">Username</label>' in page.text
    assert "中文" in page.text


def test_any_chinese_browser_gets_traditional_chinese(client: TestClient) -> None:
    page = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert '<html lang="zh-Hant-TW">' in page.text


def test_a_browser_asking_for_neither_language_gets_english(client: TestClient) -> None:
    page = client.get("/login", headers={"Accept-Language": "ja-JP"})
    assert '<html lang="en">' in page.text


def test_language_switch_sets_a_cookie_that_wins_over_the_browser(client: TestClient) -> None:
    switched = client.get("/lang/en?next=/login", follow_redirects=False)
    assert switched.status_code == 303
    assert switched.headers["location"] == "/login"
    assert client.cookies.get("lang") == "en"
    page = client.get("/login", headers={"Accept-Language": "zh-TW"})
    assert "<h1>Sign in</h1>" in page.text

    client.get("/lang/zh-TW?next=/login")
    assert "<h1>登入</h1>" in client.get("/login", headers={"Accept-Language": "en"}).text


def test_language_switch_does_not_redirect_to_another_site(client: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        switched = client.get("/lang/en", params={"next": target}, follow_redirects=False)
        assert switched.headers["location"] == "/"  # the front door, on this site


def test_unknown_language_gets_a_friendly_page(client: TestClient) -> None:
    page = client.get("/lang/fr", headers={"Accept-Language": "en"})
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "Traditional Chinese (zh-TW) and English (en)" in page.text


def test_states_and_roles_are_shown_translated(client: TestClient, technician: Account) -> None:
    chinese = client.get("/machines").text
    assert "現場工程師" in chinese
    assert "舊系統" in chinese and "升級中" in chinese and "已上新平台" in chinese
    assert "5 台機台" in chinese
    client.get("/lang/en")
    english = client.get("/machines").text
    assert "Field technician" in english
    assert "On the old system" in english and "Migrating" in english
    assert "5 machines" in english
