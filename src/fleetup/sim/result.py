"""What a simulated run produced, and the thin HTTP seam every simulated actor speaks through."""

from __future__ import annotations

import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from json import dumps
from typing import Any

import httpx

from fleetup.sim.inline import InlineTransport


@dataclass
class WaveCount:
    """A wave's machines as the server counts them at the end of the run."""

    planned: int = 0
    succeeded: int = 0
    failed: int = 0
    unfinished: int = 0
    status: str = ""


@dataclass
class SimResult:
    """Final counts of a run. ``counts()`` holds everything a seeded run must repeat."""

    machines: int = 0
    seed: int = 0
    profile: str = ""
    mode: str = ""
    waves: dict[str, WaveCount] = field(default_factory=dict)
    step_minutes: dict[str, list[float]] = field(default_factory=dict)
    problems: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    incidents: Counter[str] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    acceptances: int = 0
    shutdown_blockers: int | None = None
    shut_down: bool = False
    surveys: Counter[str] = field(default_factory=Counter)
    scores: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    route_seconds: dict[str, float] = field(default_factory=dict)
    route_calls: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    # Sends repeated because the server was gone, and answers it had kept from a first send.
    retried: int = 0
    replayed: int = 0
    wakeups: int = 0
    clock_moves: int = 0
    wall_seconds: float = 0.0
    simulated_days: float = 0.0

    def step(self, name: str, minutes: float) -> None:
        self.step_minutes.setdefault(name, []).append(round(minutes, 3))

    def durations(self) -> dict[str, dict[str, float]]:
        """Per step: how many runs, mean and 95th percentile in minutes."""
        table: dict[str, dict[str, float]] = {}
        for name, values in sorted(self.step_minutes.items()):
            ordered = sorted(values)
            table[name] = {
                "count": len(values),
                "mean": round(statistics.fmean(values), 2),
                "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            }
        return table

    def counts(self) -> dict[str, Any]:
        return {
            "machines": self.machines,
            "waves": {code: vars(count) for code, count in sorted(self.waves.items())},
            "steps": self.durations(),
            "problems": dict(sorted(self.problems.items())),
            "faults": dict(sorted(self.faults.items())),
            "incidents": dict(sorted(self.incidents.items())),
            "decisions": dict(sorted(self.decisions.items())),
            "visits": dict(sorted(self.outcomes.items())),
            "acceptances": self.acceptances,
            "shutdown": {"blockers": self.shutdown_blockers, "shut_down": self.shut_down},
            "surveys": dict(sorted(self.surveys.items())),
            "scores": list(self.scores),
            "errors": dict(sorted(self.errors.items())),
        }

    @property
    def succeeded(self) -> int:
        return sum(count.succeeded for count in self.waves.values())

    @property
    def failed(self) -> int:
        return sum(count.failed for count in self.waves.values())


def moment(text: str) -> datetime:
    """A timestamp as the API writes it (ISO 8601, ``Z`` or an offset)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# Answers that mean "not now": a proxy or a server that is (re)starting.
UNAVAILABLE = (502, 503)
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class Api:
    """Every HTTP call of the simulated actors; counts them and the unexpected answers.

    A call rides out a server restart: on a connection error, or a 502/503, it sends the same
    request again (with the same ``Idempotency-Key``, so a change the server had already made
    is answered from what it kept, not made twice) until ``patience`` seconds have passed.

    Args:
        client: where the server is (over the network or in-process).
        result: the run's counts.
        patience: how long one call keeps trying before the error is raised.
        keyed: send an ``Idempotency-Key`` with each change; an in-process server cannot
            restart under the simulator, so it needs none.
        transport: the client's transport, to hand requests to directly: the simulated
            actors use none of what a client adds around it (cookies, redirects, auth flows),
            and an in-process server's cheapest answers cost less than that.
    """

    def __init__(
        self,
        client: httpx.Client,
        result: SimResult,
        *,
        patience: float = 60.0,
        keyed: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.client = client
        self.result = result
        self.patience = patience
        self.keyed = keyed
        self._deliver = transport.handle_request if transport is not None else client.send
        self._inline = transport if isinstance(transport, InlineTransport) else None

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200, 201),
        replayable: bool = True,
    ) -> httpx.Response:
        """Send one request; ``replayable=False`` leaves out the idempotency key (a request
        that is safe to repeat by itself, such as a clock move)."""
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        if self.keyed and replayable and method not in SAFE:
            sent["Idempotency-Key"] = uuid.uuid4().hex
        self.result.requests += 1
        began = time.perf_counter()
        answer = self._send(method, path, json=json, content=content, headers=sent)
        route = (
            method
            + " "
            + "/".join(
                part if not any(c.isdigit() for c in part) else "N"
                for part in path.split("?")[0].split("/")
            )
        )
        spent = time.perf_counter() - began
        self.result.route_seconds[route] = self.result.route_seconds.get(route, 0.0) + spent
        self.result.route_calls[route] += 1
        if answer.headers.get("idempotent-replayed") == "true":
            self.result.replayed += 1
        if answer.status_code not in expect:
            self.result.errors[f"{route} {answer.status_code}"] += 1
        return answer

    def _send(self, method: str, path: str, **request: Any) -> httpx.Response:
        """The request, sent again while the server is unreachable or unavailable."""
        deadline = time.monotonic() + self.patience
        pause = 0.02
        while True:
            try:
                answer = self._exchange(method, path, **request)
                if answer.status_code not in UNAVAILABLE or time.monotonic() >= deadline:
                    return answer
            except httpx.TransportError:
                if time.monotonic() >= deadline:
                    raise
            self.result.retried += 1
            time.sleep(pause)
            pause = min(pause * 2, 0.2)

    def _exchange(
        self, method: str, path: str, *, json: Any, content: bytes | None, headers: dict[str, str]
    ) -> httpx.Response:
        if self._inline is None:
            request = self.client.build_request(
                method, path, json=json, content=content, headers=headers
            )
            return self._deliver(request)
        body = content or b""
        if json is not None:
            # As httpx writes a JSON body.
            text = dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            body, headers = text.encode(), {**headers, "Content-Type": "application/json"}
        return self._inline.call(method, path, headers, body)
