"""Where a server on simulated time delivers its messages and wake-ups.

A simulated campaign must never reach a real customer's mailbox or a real broker, and the
simulated people must read what the real ones would: the survey link in the invitation, the
page for a new incident, the wake-up of an IPC. So a server built on a ``ManualClock`` keeps a
``SimulatedInbox``: the worker's delivery and wake-up jobs hand it what they would have sent,
and the simulation endpoint passes it on to the simulator with each move of the clock.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

WAKE_PREFIX = "fleetup/devices/"
WAKE_SUFFIX = "/wake"


@dataclass(frozen=True)
class Delivered:
    """One message as the channel received it."""

    url: str
    title: str
    body: str


@dataclass
class SimulatedInbox:
    """A channel and a wake-up publisher that keep everything until ``take`` is called."""

    _messages: list[Delivered] = field(default_factory=list)
    _woken: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, url: str, title: str, body: str) -> None:
        with self._lock:
            self._messages.append(Delivered(url, title, body))

    def publish(self, topics: Sequence[str]) -> None:
        with self._lock:
            self._woken.extend(
                topic.removeprefix(WAKE_PREFIX).removesuffix(WAKE_SUFFIX) for topic in topics
            )

    def take(self) -> tuple[list[Delivered], list[str]]:
        """Everything delivered since the last call (messages, then woken device ids)."""
        with self._lock:
            messages, self._messages = self._messages, []
            woken, self._woken = self._woken, []
        return messages, woken
