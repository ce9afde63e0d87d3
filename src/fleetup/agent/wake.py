"""MQTT wake-ups: poll at once when the server says something changed, not at the next tick.

The server publishes an empty message on ``fleetup/devices/<device id>/wake`` (QoS 1) whenever
one of the device's actions changes. ``PollPacer`` is what the daemon loop waits on between
polls: without a broker it simply sleeps the poll interval; with one it also returns as soon
as a wake-up arrives. The broker comes from ``agent.mqtt_url`` in the agent's configuration,
else from the ``mqtt_url`` the last action's ``network`` settings wrote to the cloud settings
file. MQTT only shortens the wait: a broker that is down costs nothing but the early wake-up,
and paho reconnects by itself.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("fleetup.agent.wake")


def wake_topic(device_id: str) -> str:
    """The topic the server publishes the device's wake-ups on (``device_id`` like dev-7)."""
    return f"fleetup/devices/{device_id}/wake"


def broker_url(configured: str | None, cloud_settings_file: Path) -> str | None:
    """The broker to listen to: the configured one, else the one the last action named."""
    if configured:
        return configured
    try:
        settings = json.loads(cloud_settings_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found = settings.get("mqtt_url") if isinstance(settings, dict) else None
    return found if isinstance(found, str) and found else None


class WakeListener:
    """Subscribes to one device's wake topic; ``wait`` returns early when a message arrives.

    Args:
        url: ``mqtt://[user:pass@]host[:port]`` or ``mqtts://...``.
        topic: the device's wake topic.
    """

    def __init__(self, url: str, topic: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"not an MQTT URL: {parts.scheme}://{parts.hostname or ''}")
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.url = url
        self.topic = topic
        self.subscribed = threading.Event()
        self._woken = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2)
        if parts.username:
            self._client.username_pw_set(parts.username, parts.password)
        if parts.scheme == "mqtts":
            self._client.tls_set()
        self._client.reconnect_delay_set(min_delay=1, max_delay=60)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._host = parts.hostname
        self._port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    def start(self) -> None:
        """Connect in the background (retrying while the broker is away)."""
        self._client.connect_async(self._host, self._port, keepalive=60)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s``; True when a wake-up ended the wait early."""
        woken = self._woken.wait(timeout_s)
        self._woken.clear()
        return woken

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT broker refused the connection: %s", reason)
            return
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, reasons: Any, props: Any) -> None:
        self.subscribed.set()
        # Whatever changed while we were away is seen by polling now.
        self._woken.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        log.info("wake-up on %s", message.topic)
        self._woken.set()


class PollPacer:
    """How the daemon waits between polls: the poll interval, cut short by a wake-up.

    Args:
        configured_url: ``agent.mqtt_url`` from the configuration, or None.
        cloud_settings_file: where a later action may name the broker.
        device_id: the device's public id (``dev-7``).
    """

    def __init__(self, configured_url: str | None, cloud_settings_file: Path, device_id: str):
        self._configured = configured_url
        self._settings_file = cloud_settings_file
        self._topic = wake_topic(device_id)
        self._stop = threading.Event()
        self.listener: WakeListener | None = None

    def refresh(self) -> None:
        """Start, switch or keep the listener to match the broker currently named."""
        url = broker_url(self._configured, self._settings_file)
        if self.listener is not None and self.listener.url == url:
            return
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        if url:
            try:
                listener = WakeListener(url, self._topic)
            except ValueError as e:
                log.warning("no wake-ups: %s", e)
                return
            listener.start()
            self.listener = listener

    def wait(self, timeout_s: float) -> bool:
        """Wait for the next poll; True when a wake-up (not the interval) ended the wait."""
        self.refresh()
        if self.listener is None:
            self._stop.wait(timeout_s)
            return False
        return self.listener.wait(timeout_s)

    def close(self) -> None:
        self._stop.set()
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
