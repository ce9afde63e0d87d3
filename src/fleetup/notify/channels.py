"""The outside world of notify, behind two small seams.

``Channel`` sends one message to one Apprise URL; ``AppriseChannel`` is the real one and tests
swap in their own. ``WakePublisher`` publishes device wake-ups; ``MqttPublisher`` is the real
one (paho-mqtt 2.x, QoS 1). Both raise ``ChannelError`` (or its ``PermanentChannelError``,
which retrying cannot fix) with a message safe to store and show: it never holds the URL.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit

import apprise

log = logging.getLogger(__name__)

# Schemes whose host part is a server name rather than a credential, so a label may show it.
_HOST_IS_PUBLIC = frozenset(
    {"json", "jsons", "form", "forms", "xml", "xmls", "mailto", "mailtos", "ntfy", "ntfys"}
)


class ChannelError(Exception):
    """A message could not be sent this time; the worker retries."""


class PermanentChannelError(ChannelError):
    """A message can never be sent this way (the URL is not a usable channel)."""


def digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def label(url: str) -> str:
    """A form of ``url`` that is safe to show and log: no credentials, tokens or paths."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "invalid URL"
    scheme = parts.scheme.lower() or "?"
    tag = digest(url)[:8]
    if scheme in _HOST_IS_PUBLIC and parts.hostname:
        port = f":{parts.port}" if parts.port else ""
        return f"{scheme}://{parts.hostname}{port}/… #{tag}"
    return f"{scheme}://… #{tag}"


def is_usable(url: str) -> bool:
    """Whether Apprise knows how to send to ``url``."""
    return bool(apprise.Apprise().add(url))


class Channel(Protocol):
    """Sends one message to one channel URL, or raises ``ChannelError``."""

    def send(self, url: str, title: str, body: str) -> None: ...


class AppriseChannel:
    """Sends through Apprise; its log lines (which may quote parts of the URL) are kept out."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self._asset = apprise.AppriseAsset(storage_mode="memory", service_timeout=timeout_s)

    def send(self, url: str, title: str, body: str) -> None:
        sender = apprise.Apprise(asset=self._asset)
        if not sender.add(url):
            raise PermanentChannelError("Apprise does not recognise this channel URL")
        with apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
            sent = sender.notify(title=title, body=body)
        if not sent:
            raise ChannelError(_reason(captured.getvalue(), url))


def _reason(logged: str, url: str) -> str:
    lines = [line.strip() for line in logged.splitlines() if line.strip()]
    reason = lines[-1] if lines else "the channel did not accept the message"
    for secret in {url, *(p for p in urlsplit(url)[1:4] if len(p) > 3)}:
        reason = reason.replace(secret, "…")
    return reason[:500]


class WakePublisher(Protocol):
    """Publishes an empty wake-up message on each topic, or raises ``ChannelError``."""

    def publish(self, topics: Sequence[str]) -> None: ...


class MqttPublisher:
    """Publishes with QoS 1 to the broker at ``mqtt://[user:pass@]host[:port]`` (or mqtts://)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("the MQTT URL must look like mqtt://host:1883 or mqtts://host:8883")
        self._host = parts.hostname
        self._tls = parts.scheme == "mqtts"
        self._port = parts.port or (8883 if self._tls else 1883)
        self._auth = (parts.username, parts.password) if parts.username else None
        self._timeout_s = timeout_s

    def publish(self, topics: Sequence[str]) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", clean_session=True)
        if self._auth is not None:
            client.username_pw_set(self._auth[0], self._auth[1])
        if self._tls:
            client.tls_set()
        try:
            client.connect(self._host, self._port, keepalive=30)
            client.loop_start()
            try:
                infos = [client.publish(topic, b"", qos=1) for topic in topics]
                for info in infos:
                    info.wait_for_publish(timeout=self._timeout_s)
                    if not info.is_published():
                        raise ChannelError("the MQTT broker did not acknowledge the wake-up")
            finally:
                client.disconnect()
                client.loop_stop()
        except (OSError, RuntimeError, ValueError) as error:
            raise ChannelError(f"MQTT broker unreachable: {type(error).__name__}") from error
