"""Simulated agents for the load benchmark: thousands of IPCs on one asyncio loop.

Each agent behaves as ``fleetup-agent run`` does on the wire: every ``poll_s`` it polls
``/device/v1/actions/next`` with the ETag of its last answer (a 304 when nothing changed),
every ``heartbeat_s`` it posts a heartbeat, and when a poll brings an upgrade it reports the
six steps (``started`` then ``succeeded``, each with its own ``event_id``) one every
``step_s``. Each wake-up opens a fresh connection, as a real agent's does after the server's
keep-alive timeout, to one of the API processes in turn (a round-robin balancer). Agents start
at random offsets, so the load is spread evenly over the poll interval.

Run as ``python -m bench._agents`` with a JSON spec on stdin; it prints one JSON result on
stdout: answers by kind and status, errors with a few samples, poll latency percentiles
(from opening the connection to the last byte of the answer), and how late the loop woke up
(if the generator itself falls behind, its lateness says so).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench._http import Connection, HttpError, Request, run_loop

STEPS = ("backup", "download", "install", "network", "register", "function_test")
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Spec:
    ports: list[int]
    duration_s: float
    poll_s: float
    heartbeat_s: float
    step_s: float
    seed: int
    logins: list[dict[str, Any]]

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Spec:
        return cls(
            ports=[int(p) for p in data["ports"]],
            duration_s=float(data["duration_s"]),
            poll_s=float(data["poll_s"]),
            heartbeat_s=float(data["heartbeat_s"]),
            step_s=float(data["step_s"]),
            seed=int(data.get("seed", 1)),
            logins=list(data["logins"]),
        )


@dataclass
class Tally:
    """What all agents saw; one instance shared by every agent task."""

    answers: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    samples: list[str] = field(default_factory=list)
    poll_latency_s: list[float] = field(default_factory=list)
    poll_sent_at: list[float] = field(default_factory=list)  # seconds since the run began
    lateness_s: list[float] = field(default_factory=list)
    steps_sent: int = 0
    upgrades_finished: int = 0

    def answer(self, kind: str, status: int, expected: tuple[int, ...], body: bytes) -> bool:
        key = f"{kind} {status}"
        self.answers[key] = self.answers.get(key, 0) + 1
        if status in expected:
            return True
        self.error(f"{kind}: {status} {body[:200]!r}")
        return False

    def error(self, sample: str) -> None:
        self.errors += 1
        if len(self.samples) < 20:
            self.samples.append(sample)


def _at() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Agent:
    """One simulated IPC: its credential, last ETag, and the upgrade it is reporting."""

    def __init__(self, index: int, login: dict[str, Any], spec: Spec, tally: Tally) -> None:
        self.index = index
        self.serial = str(login["serial"])
        self.auth = {"Authorization": f"Bearer {login['credential']}"}
        self.spec = spec
        self.tally = tally
        self.etag: str | None = None
        self.action_id: str | None = None
        self.reports: list[tuple[str, str]] = [
            (step, status) for step in STEPS for status in ("started", "succeeded")
        ]
        self.cycles = 0
        self.started = 0.0

    async def run(self, start: float, end: float, rng: random.Random) -> None:
        self.started = start
        next_poll = start + rng.uniform(0, self.spec.poll_s)
        next_beat = start + rng.uniform(0, self.spec.heartbeat_s)
        next_step = float("inf")
        while True:
            due = min(next_poll, next_beat, next_step)
            if due >= end:
                return
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            self.tally.lateness_s.append(max(now - due, 0.0))
            port = self.spec.ports[(self.index + self.cycles) % len(self.spec.ports)]
            self.cycles += 1
            connection = Connection("127.0.0.1", port)
            opened = time.monotonic()
            try:
                await asyncio.wait_for(connection.open(), TIMEOUT_S)
                if now >= next_poll:
                    await self._poll(connection, opened)
                    next_poll += self.spec.poll_s
                    if self.action_id and self.reports and next_step == float("inf"):
                        next_step = time.monotonic() + self.spec.step_s
                if now >= next_beat:
                    await self._heartbeat(connection)
                    next_beat += self.spec.heartbeat_s
                if now >= next_step:
                    await self._report(connection)
                    next_step = now + self.spec.step_s if self.reports else float("inf")
            except (HttpError, OSError, TimeoutError) as error:
                self.tally.error(f"{type(error).__name__}: {error}")
                next_poll = max(next_poll, now) + self.spec.poll_s
                next_beat = max(next_beat, now + self.spec.heartbeat_s)
                if next_step != float("inf"):
                    next_step = now + self.spec.step_s
            finally:
                await connection.close()

    async def _send(self, connection: Connection, request: Request) -> Any:
        return await asyncio.wait_for(connection.request(request), TIMEOUT_S)

    async def _poll(self, connection: Connection, opened: float) -> None:
        headers = dict(self.auth)
        if self.etag:
            headers["If-None-Match"] = self.etag
        reply = await self._send(connection, Request("GET", "/device/v1/actions/next", headers))
        self.tally.poll_latency_s.append(time.monotonic() - opened)
        self.tally.poll_sent_at.append(opened - self.started)
        if not self.tally.answer("poll", reply.status, (200, 304), reply.body):
            return
        if reply.status == 200:
            self.etag = reply.headers.get("etag")
            action = json.loads(reply.body).get("action")
            if isinstance(action, dict) and action.get("kind") == "upgrade":
                self.action_id = str(action["id"])
            elif self.action_id and not self.reports:
                self.tally.upgrades_finished += 1
                self.action_id = None

    async def _heartbeat(self, connection: Connection) -> None:
        body = {
            "at": _at(),
            "version": "1.0.0",
            "link": "primary",
            "health": {"disk_free": 10_000_000_000, "uptime": 3600 + self.cycles, "load": 0.2},
        }
        request = Request(
            "POST",
            "/device/v1/heartbeat",
            self.auth | {"Content-Type": "application/json"},
            json.dumps(body).encode(),
        )
        reply = await self._send(connection, request)
        self.tally.answer("heartbeat", reply.status, (200,), reply.body)

    async def _report(self, connection: Connection) -> None:
        step, status = self.reports[0]
        body = {
            "event_id": f"{self.serial}-{step}-{status}",
            "step": step,
            "status": status,
            "at": _at(),
            "evidence": {"attempt": 1},
        }
        request = Request(
            "POST",
            f"/device/v1/actions/{self.action_id}/events",
            self.auth | {"Content-Type": "application/json"},
            json.dumps(body).encode(),
        )
        reply = await self._send(connection, request)
        self.tally.steps_sent += 1
        if self.tally.answer("step", reply.status, (200,), reply.body):
            self.reports.pop(0)


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _windows(tally: Tally, width_s: float) -> list[dict[str, float]]:
    """Poll latency per window of ``width_s`` seconds: the first poll interval, when every
    agent's first poll gets a full answer, reads apart from the steady state after it."""
    by_window: dict[int, list[float]] = {}
    for sent_at, latency in zip(tally.poll_sent_at, tally.poll_latency_s, strict=True):
        by_window.setdefault(int(sent_at // width_s), []).append(latency)
    return [
        {
            "from_s": index * width_s,
            "polls": len(values),
            "p50_s": _percentile(values, 0.50),
            "p99_s": _percentile(values, 0.99),
        }
        for index, values in sorted(by_window.items())
    ]


async def simulate(spec: Spec) -> dict[str, Any]:
    """Run every agent until ``duration_s`` has passed; returns the tally as plain data."""
    tally = Tally()
    rng = random.Random(spec.seed)
    start = time.monotonic()
    end = start + spec.duration_s
    agents = [Agent(i, login, spec, tally) for i, login in enumerate(spec.logins)]
    await asyncio.gather(*(agent.run(start, end, rng) for agent in agents))
    latency = tally.poll_latency_s
    return {
        "agents": len(agents),
        "seconds": time.monotonic() - start,
        "answers": tally.answers,
        "errors": tally.errors,
        "error_samples": tally.samples,
        "polls": len(latency),
        "poll_p50_s": _percentile(latency, 0.50),
        "poll_p99_s": _percentile(latency, 0.99),
        "poll_max_s": max(latency, default=0.0),
        "poll_windows": _windows(tally, spec.poll_s),
        "late_p99_s": _percentile(tally.lateness_s, 0.99),
        "late_max_s": max(tally.lateness_s, default=0.0),
        "steps_sent": tally.steps_sent,
        "upgrades_seen": sum(1 for a in agents if a.action_id or len(a.reports) < len(STEPS) * 2),
        "upgrades_reported": sum(1 for a in agents if not a.reports),
        "upgrades_finished": tally.upgrades_finished,
    }


def main() -> None:
    spec = Spec.parse(json.load(sys.stdin))
    cpu = time.process_time()
    result = run_loop(simulate(spec))
    result["client_cpu_s"] = time.process_time() - cpu
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
