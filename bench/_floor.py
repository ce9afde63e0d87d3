"""What the simulator's requests would cost if every route did nothing: the campaigns' floor.

The in-process simulator sends each request through the whole application (middleware,
routing, the framework's request and response handling) on its own event loop. Timing the
server's no-op route (``GET /healthz``: no authentication, no database) the same way, in the
same run, tells how much of a campaign's wall time no route can save: a campaign of ``n``
requests cannot run faster than ``n`` no-op requests.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path

from fleetup.core.config import Settings
from fleetup.sim.inline import InlineTransport
from fleetup.sim.runner import DEFAULT_START, in_process


def noop_seconds(requests: int, *, sample: int = 20_000) -> float:
    """Seconds ``requests`` no-op requests take in-process, from the best of three rounds of
    ``sample``; the best, because the floor is what the machine can do when nothing else
    runs."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(var_dir=Path(tmp), secret_key="bench-secret-key-not-for-production")
        start = datetime.combine(DEFAULT_START, clock_time(), UTC)
        with in_process(settings, start) as (_client, _ctx, transport):
            assert isinstance(transport, InlineTransport)
            for _ in range(sample // 10):
                transport.call("GET", "/healthz", {})
            rounds = []
            for _ in range(3):
                began = time.perf_counter()
                for _ in range(sample):
                    transport.call("GET", "/healthz", {})
                rounds.append((time.perf_counter() - began) / sample)
    return min(rounds) * requests


def report(label: str, requests: int, wall_seconds: float) -> None:
    """Print the floor of a run of ``requests`` beside its wall time, as a comment line."""
    floor = noop_seconds(requests)
    print(
        f"# {label}: {requests} requests take {floor:.1f} s through the no-op route "
        f"({1000 * floor / requests:.3f} ms each); the run took {wall_seconds:.1f} s "
        f"({1000 * wall_seconds / requests:.3f} ms a request)",
        flush=True,
    )
