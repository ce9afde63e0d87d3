"""The one seam between the agent and the fleetup server.

:class:`Transport` wraps one :class:`httpx.Client` and two base URLs: the site's normal
line (``primary``) and the 4G backup (``fallback``). Every request tries the link that last
worked, falls over to the other one on connection errors and transient statuses (429, 502,
503, 504), and retries with exponential backoff; :attr:`Transport.link` tells which link
answered last, for evidence and heartbeats. A failed primary is retried first again after
``primary_retry_s``, so the site goes back to its own line once it is repaired.
:meth:`Transport.pin_fallback` (a ``fallback`` action from the server) turns that around: the
4G link is tried first until :meth:`Transport.unpin`, and it is reported as ``4g``.

Tests pass ``http=httpx.MockTransport(handler)`` (or point the URLs at a local server):
nothing else in the agent opens a connection to the fleetup server.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import httpx

from fleetup.agent._internal.clock import Clock, SystemClock
from fleetup.agent.errors import NotEnrolled, ServerRejected, ServerUnreachable

log = logging.getLogger(__name__)

PRIMARY = "primary"
FALLBACK = "fallback"
PINNED_4G = "4g"
_TRANSIENT_STATUS = frozenset({429, 502, 503, 504})
USER_AGENT = "fleetup-agent/1"


class Transport:
    """HTTP to the fleetup server over the primary link, else the fallback link.

    Args:
        primary_url: base URL over the site's line, e.g. ``https://fleetup.example.com``.
        fallback_url: base URL over the 4G backup, or ``None``.
        credential: the device credential sent as ``Authorization: Bearer``.
        http: the httpx transport (tests pass ``httpx.MockTransport``).
        timeout_s: per-request timeout.
        retries: rounds over the links before giving up.
        backoff_s: first pause between rounds; doubles each round.
        verify_tls: check the server's certificate.
        clock: time source, for backoff and the primary re-probe.
        primary_retry_s: how long to prefer the fallback after the primary failed.
    """

    def __init__(
        self,
        *,
        primary_url: str,
        fallback_url: str | None = None,
        credential: str | None = None,
        http: httpx.BaseTransport | None = None,
        timeout_s: float = 30.0,
        retries: int = 4,
        backoff_s: float = 1.0,
        verify_tls: bool = True,
        clock: Clock | None = None,
        primary_retry_s: float = 300.0,
    ) -> None:
        self._bases = {PRIMARY: primary_url.rstrip("/")}
        if fallback_url:
            self._bases[FALLBACK] = fallback_url.rstrip("/")
        self.credential = credential
        self._client = httpx.Client(
            transport=http,
            timeout=timeout_s,
            verify=verify_tls,
            headers={"User-Agent": USER_AGENT},
        )
        self._retries = retries
        self._backoff_s = backoff_s
        self._clock = clock or SystemClock()
        self._primary_retry_s = primary_retry_s
        self._primary_failed_at: float | None = None
        self._pinned = False
        self.link: str = PRIMARY

    @property
    def pinned(self) -> bool:
        """Whether the fallback (4G) link is tried first, by order of the server."""
        return self._pinned

    @property
    def urls(self) -> dict[str, str]:
        """The base URL of each link (``primary``, ``fallback`` when there is one)."""
        return dict(self._bases)

    def pin_fallback(self, url: str | None = None) -> None:
        """Try the fallback (4G) link first from now on, at ``url`` when given.

        The primary stays the second choice, so a dead 4G modem does not cut the IPC off.
        """
        if url:
            self._bases[FALLBACK] = url.rstrip("/")
        if FALLBACK not in self._bases:
            raise ValueError("there is no fallback URL to pin")
        self._pinned = True
        self.link = PINNED_4G

    def unpin(self) -> None:
        """Go back to the primary-first order."""
        self._pinned = False

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201),
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Send one request, falling over and retrying as described above.

        Args:
            method: HTTP method.
            path: path under the base URL, e.g. ``/device/v1/heartbeat``.
            json: JSON body.
            content: raw body.
            params: query parameters.
            headers: extra headers.
            ok: statuses returned to the caller instead of raised.
            idempotency_key: sent as ``Idempotency-Key`` on every attempt, so a request whose
                answer was lost is answered again, not done twice.

        Returns:
            The response, whose status is in ``ok``.

        Raises:
            ServerUnreachable: no link answered after every retry.
            NotEnrolled: the server answered 401: the credential is missing or not valid.
            ServerRejected: the server answered another status not in ``ok`` (403 included:
                a valid credential asked for what is not its device's).
        """
        if idempotency_key is not None:
            headers = {**(headers or {}), "Idempotency-Key": idempotency_key}
        last_problem = "no attempt"
        for attempt in range(self._retries):
            if attempt:
                self._clock.sleep(self._backoff_s * 2 ** (attempt - 1))
            for link in self._link_order():
                try:
                    response = self._client.request(
                        method,
                        self._bases[link] + path,
                        json=json,
                        content=content,
                        params=params,
                        headers=self._headers(headers),
                    )
                except httpx.TransportError as e:
                    last_problem = f"{link}: {type(e).__name__}: {e}"
                    self._link_failed(link)
                    continue
                if response.status_code in _TRANSIENT_STATUS:
                    last_problem = f"{link}: HTTP {response.status_code}"
                    continue
                self._link_worked(link)
                return _checked(response, ok)
        raise ServerUnreachable(f"{method} {path} failed on every link ({last_problem})")

    def get_json(self, path: str, **kwargs: Any) -> Any:
        """GET ``path`` and decode its JSON body (see :meth:`request`)."""
        return _json(self.request("GET", path, **kwargs))

    def post_json(self, path: str, body: Any, **kwargs: Any) -> Any:
        """POST a JSON body and decode the JSON answer (see :meth:`request`)."""
        return _json(self.request("POST", path, json=body, **kwargs))

    @contextlib.contextmanager
    def stream(
        self, path: str, *, headers: dict[str, str] | None = None
    ) -> Iterator[httpx.Response]:
        """Open a streaming GET; the caller reads ``iter_bytes()`` and handles cuts.

        Only the connection is tried on each link; a cut while reading is raised as
        :class:`httpx.TransportError` for the caller to resume from where it got.

        Raises:
            ServerUnreachable: no link accepted the connection.
            NotEnrolled, ServerRejected: the server answered an error status.
        """
        response: httpx.Response | None = None
        last_problem = "no attempt"
        for attempt in range(self._retries):
            if attempt:
                self._clock.sleep(self._backoff_s * 2 ** (attempt - 1))
            for link in self._link_order():
                request = self._client.build_request(
                    "GET", self._bases[link] + path, headers=self._headers(headers)
                )
                try:
                    candidate = self._client.send(request, stream=True)
                except httpx.TransportError as e:
                    last_problem = f"{link}: {type(e).__name__}: {e}"
                    self._link_failed(link)
                    continue
                if candidate.status_code in _TRANSIENT_STATUS:
                    candidate.close()
                    last_problem = f"{link}: HTTP {candidate.status_code}"
                    continue
                self._link_worked(link)
                response = candidate
                break
            if response is not None:
                break
        if response is None:
            raise ServerUnreachable(f"GET {path} failed on every link ({last_problem})")
        try:
            if response.status_code >= 400:
                response.read()
            _checked(response, (200, 206, 304, 404, 416))
            yield response
        finally:
            response.close()

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.credential:
            headers["Authorization"] = f"Bearer {self.credential}"
        return headers

    def _link_order(self) -> list[str]:
        links = list(self._bases)
        if self._pinned and FALLBACK in self._bases:
            return [FALLBACK, PRIMARY]
        failed_at = self._primary_failed_at
        recently_failed = (
            failed_at is not None and self._clock.monotonic() - failed_at < self._primary_retry_s
        )
        if recently_failed and FALLBACK in self._bases:
            links.reverse()
        return links

    def _link_failed(self, link: str) -> None:
        log.info("link %s failed", link)
        if link == PRIMARY:
            self._primary_failed_at = self._clock.monotonic()

    def _link_worked(self, link: str) -> None:
        if link == PRIMARY:
            self._primary_failed_at = None
        self.link = PINNED_4G if self._pinned and link == FALLBACK else link


def _checked(response: httpx.Response, ok: tuple[int, ...]) -> httpx.Response:
    if response.status_code in ok:
        return response
    try:
        detail = response.text[:300]
    except httpx.ResponseNotRead:
        detail = ""
    if response.status_code == 401:
        raise NotEnrolled(response.status_code, detail)
    raise ServerRejected(response.status_code, detail)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as e:
        raise ServerRejected(response.status_code, f"answer is not JSON: {e}") from e
