"""Translations: English source strings, Traditional Chinese catalogs.

Catalogs are gettext ``.po`` files under ``fleetup/translations/<locale>/LC_MESSAGES/``; every
``.po`` file of a locale is read and merged (one per area of the product, so they stay small),
and compiled in memory when first needed, so no generated ``.mo`` files live in the tree.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Callable
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("zh-TW", "en")
DEFAULT_LANGUAGE = "zh-TW"
CATALOGS = Path(__file__).resolve().parent.parent / "translations"
_LOCALE_DIRS = {"zh-TW": "zh_TW"}


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The merged catalog for ``language``; English and unknown languages translate nothing."""
    folder = _LOCALE_DIRS.get(language)
    if folder is None:
        return gettext.NullTranslations()
    merged: gettext.NullTranslations | None = None
    for path in sorted((CATALOGS / folder / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=folder)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        loaded = gettext.GNUTranslations(buffer)
        if merged is None:
            merged = loaded
        else:
            merged.add_fallback(loaded)
    return merged or gettext.NullTranslations()


def gettext_for(language: str) -> Callable[[str], str]:
    """A ``_`` function for ``language``."""
    return translations(language).gettext


def ngettext_for(language: str) -> Callable[[str, str, int], str]:
    return translations(language).ngettext


def negotiate(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """Pick zh-TW or en from an Accept-Language header; any Chinese gets zh-TW."""
    if not accept_language:
        return default
    ranked: list[tuple[float, str]] = []
    for part in accept_language.split(","):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((quality, tag.strip().lower()))
    for _quality, tag in sorted(ranked, key=lambda item: -item[0]):
        if tag.startswith("zh"):
            return "zh-TW"
        if tag.startswith("en"):
            return "en"
    return default


def normalise(language: str | None) -> str | None:
    """``zh-tw``, ``zh_TW`` and ``zh-Hant`` become zh-TW; ``en-US`` becomes en; else None."""
    if not language:
        return None
    lowered = language.replace("_", "-").lower()
    if lowered.startswith("zh"):
        return "zh-TW"
    if lowered.startswith("en"):
        return "en"
    return None
