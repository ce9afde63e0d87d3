"""SIGKILL the server (and with it the worker) 20 times during a simulated campaign.

A ``fleetup serve --simulated-clock`` runs a small fleet's campaign with the realistic fault
profile, driven over HTTP by the simulator in another thread. This thread kills the server's
process group at seeded moments spread over the run: some during clock moves (the worker's
jobs are running in that request), some during device reports, some during people's requests
(a manager's decision, a technician's SOP step, a customer's answer), each a few milliseconds
after the simulator sent it, so it lands before, inside or just after the server's work. The
server is started again at once with the same command; the simulator sends the cut-off
request again (same idempotency key) until it is answered.

Then the run is compared with an uninterrupted run of the same seed (URL mode too, same
fleet): the same per-wave counts, outcomes, surveys, step durations and request count, the
same number of rows in every table, the same step reports per machine; and in the database,
every step report the simulator got an answer for is there once, none is there that it did
not send, and each step reported succeeded has exactly one succeeded report.

``FLEETUP_CRASH_KILLS``, ``FLEETUP_CRASH_MACHINES`` and ``FLEETUP_CRASH_SEED`` make a longer
soak; ``test-results/crash.jsonl`` gets the measured figures of each run.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from crash_helpers import (
    ANSWER_LOST,
    CLOCK,
    DEVICE,
    GATE_ENV,
    JOB_DONE,
    KINDS,
    PEOPLE,
    TIMED,
    Facts,
    Kill,
    Witness,
    crashable_server,
    env_int,
    facts,
    kill_plan,
    kind_of,
    report_line,
    server_env,
    watching,
)
from kill_helpers import root_conftest

from fleetup.core.config import Settings
from fleetup.core.db import make_engine
from fleetup.sim.result import SimResult
from fleetup.sim.runner import Options, run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.name != "posix" or not hasattr(signal, "SIGKILL"),
        reason="needs POSIX process groups and SIGKILL",
    ),
]

KILLS = env_int("FLEETUP_CRASH_KILLS", 20)
MACHINES = env_int("FLEETUP_CRASH_MACHINES", 12)
SEED = env_int("FLEETUP_CRASH_SEED", 3)
START = "2026-03-02T00:00:00Z"
SECRET = "crash-suite-secret-key-not-for-production"
REPO = Path(__file__).resolve().parents[2]
# Kept answers: one row per keyed request, purged by age whenever a process gets to it.
PER_REQUEST_TABLES = {"idempotent_requests"}


@dataclass
class Run:
    result: SimResult
    facts: Facts
    witness: Witness
    wall_s: float
    kills: list[Kill] = field(default_factory=list)


_PORTS = itertools.count(int(os.environ.get("FLEETUP_CRASH_PORT") or 0))


def _port() -> int:
    """A port for one run's server: the next from ``FLEETUP_CRASH_PORT`` on, else a free one."""
    if os.environ.get("FLEETUP_CRASH_PORT"):
        return next(_PORTS)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _campaign(database_url: str, where: Path, witness: Witness) -> Run:
    """One URL-mode run against a crashable server; kills follow ``witness.plan``."""
    where.mkdir(parents=True, exist_ok=True)
    settings = Settings(var_dir=where / "var", database_url=database_url, secret_key=SECRET)
    witness.gate = where / "gate"
    witness.gate.mkdir()
    env = server_env(database_url, settings.var_dir, SECRET) | {GATE_ENV: str(witness.gate)}
    options = Options(machines=MACHINES, seed=SEED, profile="realistic")
    outcome: dict[str, Any] = {}
    kills: list[Kill] = []
    began = time.monotonic()
    with crashable_server(env, where, _port(), START) as server, watching(witness):

        def simulate() -> None:
            try:
                outcome["result"] = run(settings, options, url=server.url)
            except BaseException as error:  # handed to the test's thread
                outcome["error"] = error

        simulator = threading.Thread(target=simulate, name="simulator", daemon=True)
        simulator.start()
        while simulator.is_alive() and not witness.done:
            found = witness.next_kill(timeout=0.5)
            if found is None:
                continue
            target, (number, path, sent_at) = found
            parked = ""
            if target.moment == TIMED:
                time.sleep(max(0.0, target.delay - (time.monotonic() - sent_at)))
            else:
                parked = witness.parked(timeout=5)
            server.kill()
            witness.disarm()
            down = time.monotonic()
            server.start()
            server.wait_up()
            restart_s = round(time.monotonic() - down, 2)
            kills.append(Kill(target, number, path, parked, restart_s))
            witness.killed()
        simulator.join(timeout=900)
    if "error" in outcome:
        raise outcome["error"]
    result: SimResult = outcome["result"]
    return Run(result, facts(database_url), witness, round(time.monotonic() - began, 1), kills)


def _latency(result: SimResult) -> dict[str, float]:
    """Mean answer time per kind of request, from a run's per-route timings."""
    seconds: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for route, spent in result.route_seconds.items():
        kind = kind_of(route.split(" ", 1)[1])
        seconds[kind] += spent
        calls[kind] += result.route_calls[route]
    return {kind: seconds[kind] / calls[kind] for kind in calls}


def _second_database(first: str, where: Path, request: pytest.FixtureRequest) -> str:
    """An empty database for the second run: a new SQLite file, or the PostgreSQL one emptied."""
    if first.startswith("sqlite"):
        return f"sqlite:///{where / 'crash.db'}"
    engine = make_engine(first)
    try:
        root_conftest(request.config)._empty_postgres(engine)
    finally:
        engine.dispose()
    return first


def test_a_campaign_killed_20_times_ends_as_an_uninterrupted_one(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    began = time.monotonic()
    calm = _campaign(database_url, tmp_path / "uninterrupted", Witness())
    rng = random.Random(f"crash:{SEED}:{backend}")
    busy = calm.witness.busy_until
    plan = kill_plan(rng, kills=KILLS, requests=busy, latency=_latency(calm.result))
    crash_url = _second_database(database_url, tmp_path, request)
    crashed = _campaign(crash_url, tmp_path / "crashed", Witness(plan=plan))

    kinds = Counter(kind_of(kill.path) for kill in crashed.kills)
    moments = Counter(
        kill.target.moment for kill in crashed.kills if kill.parked or kill.target.moment == TIMED
    )
    report_line(
        REPO / "test-results" / "crash.jsonl",
        backend=backend,
        machines=MACHINES,
        seed=SEED,
        kills=len(crashed.kills),
        kills_by_kind=dict(kinds),
        kills_by_moment=dict(moments),
        restart_s_mean=round(
            sum(k.restart_s for k in crashed.kills) / max(len(crashed.kills), 1), 2
        ),
        resent=crashed.result.retried,
        replayed=crashed.result.replayed,
        requests=crashed.result.requests,
        clock_moves=crashed.result.clock_moves,
        reports_checked=len(crashed.facts.events),
        rows_compared=sum(n for t, n in crashed.facts.rows.items() if t not in PER_REQUEST_TABLES),
        uninterrupted_s=calm.wall_s,
        crashed_s=crashed.wall_s,
        total_s=round(time.monotonic() - began, 1),
    )

    # Every planned kill happened, of every kind, and the simulator felt them.
    assert len(crashed.kills) == KILLS, crashed.kills
    assert crashed.result.retried >= KILLS
    if 2 * len(KINDS) <= KILLS:
        assert {CLOCK, DEVICE, PEOPLE} <= set(kinds), kinds
        # Killed after a keyed request had committed: the retry got the kept answer, not a
        # second run; and after a move's job had committed, before its run was stored.
        assert crashed.result.replayed >= moments[ANSWER_LOST] > 0
        assert moments[JOB_DONE] > 0

    # The same campaign as without the kills.
    assert crashed.result.counts() == calm.result.counts()
    assert crashed.result.requests == calm.result.requests
    assert crashed.result.waves
    same_rows = {t: n for t, n in crashed.facts.rows.items() if t not in PER_REQUEST_TABLES}
    assert same_rows == {t: n for t, n in calm.facts.rows.items() if t not in PER_REQUEST_TABLES}
    assert crashed.facts.steps == calm.facts.steps
    assert crashed.facts.devices == calm.facts.devices

    # No step report lost, none kept twice.
    for run_ in (calm, crashed):
        kept = {key: (step, status) for key, (_s, step, status) in run_.facts.events.items()}
        assert kept == run_.witness.acknowledged
        assert run_.facts.duplicates == 0
        reported = {
            (action, step)
            for (action, _event), (step, status) in run_.witness.acknowledged.items()
            if status == "succeeded"
        }
        assert run_.facts.succeeded_once() == dict.fromkeys(reported, 1)
