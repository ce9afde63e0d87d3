"""The signed links a customer opens without signing in, and why one may be refused.

A link carries a value signed with the server's key for one purpose (``notice``,
``acceptance``, ``survey``), so a link for one thing cannot open another and a forged or
altered one is refused. The signature's own age is only a backstop: whether a link is still
good is decided from the database on the server's clock (the survey's ``expires_at``, the
visit's start, an acceptance already signed), so a link also dies once it has been used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fleetup.core.config import load_settings
from fleetup.core.security import LinkExpired, LinkInvalid, Signer

# The signature outlives every link's own expiry; what decides is the database.
SIGNATURE_MAX_AGE_S = 120 * 24 * 3600
Purpose = Literal["notice", "acceptance", "survey", "certificate"]
Reason = Literal["invalid", "expired", "used"]
PREFIX: dict[Purpose, str] = {
    "notice": "/n/",
    "acceptance": "/a/",
    "survey": "/s/",
    "certificate": "/c/",
}


class LinkRefused(Exception):
    """The link cannot be used: ``invalid`` (403), ``expired`` or ``used`` (410)."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def status(self) -> int:
        return 403 if self.reason == "invalid" else 410


def make_token(signer: Signer, purpose: Purpose, value: Any) -> str:
    return signer.sign(purpose, value)


def link_path(signer: Signer, purpose: Purpose, value: Any) -> str:
    """The page's path for the link, e.g. ``/s/<token>``."""
    return PREFIX[purpose] + make_token(signer, purpose, value)


def read_token(signer: Signer, purpose: Purpose, token: str) -> Any:
    """The signed value of ``token``.

    Raises:
        LinkRefused: forged, altered, for another purpose, or older than the backstop.
    """
    try:
        return signer.unsign(purpose, token, max_age_s=SIGNATURE_MAX_AGE_S)
    except LinkExpired as error:
        raise LinkRefused("expired") from error
    except LinkInvalid as error:
        raise LinkRefused("invalid") from error


@dataclass(frozen=True)
class Links:
    """What a link needs beyond the database: the key that signs it and the public URL."""

    signer: Signer
    base_url: str = ""


def default_links() -> Links:
    """The server's own key and address, for callers that have only a ``Ctx``."""
    settings = load_settings()
    return Links(Signer(settings.effective_secret_key()), settings.effective_base_url)
