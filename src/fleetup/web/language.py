"""Which language a page is shown in, and the labels the pages translate.

A visitor's choice is kept in the ``lang`` cookie (set by the switch in the header); without
one, the browser's Accept-Language decides: any Chinese gets zh-TW, anything else English, and
no header at all gets the configured default (zh-TW). English is the source language: strings
are written in English in templates and code and translated in ``translations/zh_TW/.../web.po``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetup.core.i18n import negotiate, normalise
from fleetup.core.security import Role

# The fleet owner has not re-exported MachineState from its schemas yet (mypy's strict mode
# wants ``MachineState as MachineState``); web must not import fleetup.fleet.models, so the
# enum is taken through schemas.
from fleetup.fleet.schemas import MachineState as MachineState

LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated later, where the language is known."""
    return message


@dataclass(frozen=True)
class Language:
    code: str  # as fleetup names it: "zh-TW" or "en"
    html: str  # the <html lang> value
    label: str  # its own name, never translated, so a reader finds their language


LANGUAGES = {
    "zh-TW": Language("zh-TW", "zh-Hant-TW", "中文"),
    "en": Language("en", "en", "English"),
}


def choose(*, cookie: str | None, accept_language: str | None, default: str) -> Language:
    """The language for one request: the cookie, else the browser's wish, else ``default``."""
    chosen = normalise(cookie)
    if chosen is None:
        chosen = negotiate(accept_language, default="en") if accept_language else default
    return LANGUAGES.get(chosen, LANGUAGES["zh-TW"])


def other(language: Language) -> Language:
    """The language the header's switch offers."""
    return LANGUAGES["en"] if language.code == "zh-TW" else LANGUAGES["zh-TW"]


STATE_LABELS: dict[MachineState, str] = {
    MachineState.on_old_system: N_("On the old system"),
    MachineState.migrating: N_("Migrating"),
    MachineState.on_new_platform: N_("On the new platform"),
    MachineState.retired: N_("Retired"),
}

ROLE_LABELS: dict[Role, str] = {
    Role.admin: N_("Administrator"),
    Role.manager: N_("Project manager"),
    Role.technician: N_("Field technician"),
    Role.on_call: N_("On-call engineer"),
    Role.viewer: N_("Viewer"),
}

# Monday first, as the sites' maintenance windows count them (0 = Monday).
WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))
