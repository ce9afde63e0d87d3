"""The discrete-event loop that makes the simulator the master of time.

Every simulated actor is a *process*: a generator that does some work (HTTP calls) and then
yields what it waits for: a delay (``timedelta``), a moment (``datetime``) or a ``Signal``
another actor fires (with an optional deadline, ``Until``). The loop keeps a heap of
``(time, seq, callback)``, takes the earliest event and every other due within ``batch`` of
it, moves the server's clock to the latest of them once (so the worker's due jobs run) and
then runs them in order. ``seq`` breaks ties in scheduling order, so a seeded run is
repeatable. With ``speed`` the loop sleeps so that simulated time runs ``speed`` times faster
than the wall clock; without it the loop runs as fast as the server answers.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta


class Signal:
    """Something a process can wait for until another one fires it."""

    def __init__(self) -> None:
        self._waiting: list[Callable[[], None]] = []
        self.fired = False

    def fire(self) -> None:
        self.fired = True
        waiting, self._waiting = self._waiting, []
        for wake in waiting:
            wake()

    def reset(self) -> None:
        self.fired = False


@dataclass(frozen=True)
class Until:
    """Wait for ``signal`` but no later than ``deadline``."""

    signal: Signal
    deadline: datetime


Wait = timedelta | datetime | Signal | Until
Process = Generator[Wait, None, None]


@dataclass(order=True)
class _Event:
    at: datetime
    seq: int
    run: Callable[[], None] = field(compare=False)


class EventLoop:
    """Runs callbacks and processes in simulated-time order.

    Args:
        start: the simulated time the loop starts at.
        advance: moves the server's clock to a moment (called only forwards).
        batch: events this close to the earliest one run with it, after one clock move.
        speed: simulated seconds per real second; None runs as fast as possible.
    """

    def __init__(
        self,
        start: datetime,
        advance: Callable[[datetime], None],
        *,
        batch: timedelta = timedelta(minutes=1),
        speed: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.now = start
        self.start = start
        self.advance = advance
        self.batch = batch
        self.speed = speed
        self._sleep = sleep
        self._monotonic = monotonic
        self._heap: list[_Event] = []
        self._seq = 0
        self._server_now = start
        self.clock_moves = 0
        self.stopped = False

    def call_at(self, when: datetime, callback: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, _Event(max(when, self.now), self._seq, callback))

    def spawn(self, process: Process, at: datetime | None = None) -> None:
        """Start ``process`` at ``at`` (default: now)."""
        self.call_at(at or self.now, lambda: self._step(process))

    def _step(self, process: Process) -> None:
        try:
            wait = next(process)
        except StopIteration:
            return
        if isinstance(wait, timedelta):
            self.call_at(self.now + wait, lambda: self._step(process))
        elif isinstance(wait, datetime):
            self.call_at(wait, lambda: self._step(process))
        else:
            self._wait_for(process, wait)

    def _wait_for(self, process: Process, wait: Signal | Until) -> None:
        signal = wait if isinstance(wait, Signal) else wait.signal
        woken = [False]

        def wake() -> None:
            if not woken[0]:
                woken[0] = True
                self.call_at(self.now, lambda: self._step(process))

        if signal.fired:
            wake()
            return
        signal._waiting.append(wake)
        if isinstance(wait, Until):
            self.call_at(wait.deadline, wake)

    def run(
        self, until: datetime | None = None, progress: Callable[[datetime], None] | None = None
    ) -> None:
        """Run events until none is left, ``until`` is reached or ``stop()`` is called."""
        real_start = self._monotonic()
        while self._heap and not self.stopped:
            first = self._heap[0].at
            if until is not None and first > until:
                break
            due: list[_Event] = []
            while self._heap and self._heap[0].at <= first + self.batch:
                due.append(heapq.heappop(self._heap))
            latest = max(event.at for event in due)
            self._pace(latest, real_start)
            if latest > self._server_now:
                self.advance(latest)
                self._server_now = latest
                self.clock_moves += 1
            for event in due:
                self.now = max(self.now, event.at)
                event.run()
            if progress is not None:
                progress(self.now)
        if until is not None and not self.stopped and until > self._server_now:
            self.now = max(self.now, until)
            self.advance(until)
            self._server_now = until

    def stop(self) -> None:
        self.stopped = True

    def _pace(self, moment: datetime, real_start: float) -> None:
        if not self.speed:
            return
        target = real_start + (moment - self.start).total_seconds() / self.speed
        while not self.stopped:
            left = target - self._monotonic()
            if left <= 0:
                return
            self._sleep(min(left, 0.5))
