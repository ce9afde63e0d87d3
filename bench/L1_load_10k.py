"""L1: 10,000 agents polling for 10 minutes against two API processes on PostgreSQL.

The deployment of docs/scale-out.md on one machine: two ``fleetup serve --no-worker``
processes and one ``fleetup worker`` over a dedicated PostgreSQL database (created when
missing, emptied at every run) and one shared ``var_dir``. The fleet is enrolled first, and
1 % of it has an upgrade deployed. Then ``bench._agents`` (its own process) runs the agents,
each as ``fleetup-agent run`` does with its configuration's defaults (agent/config.py): a poll
every ``poll_interval_s`` = 30 s with the ETag of its last answer, a heartbeat every
``heartbeat_interval_s`` = 60 s, each on a fresh connection, to either API process in turn.
For 10,000 agents that is about 333 polls and 167 heartbeats a second. The upgrading agents
report the six steps of their upgrade (``started``, then ``succeeded``) one report every
``step_s``: 20 s here, far quicker than a real backup or download, so that upgrades finish
within the run and their reports load the servers more than a real fleet's would.

Every agent starts without an ETag (a fleet whose agents all restarted at once), so in the
first poll interval every poll gets a full answer; the comment lines give the latency of each
poll interval apart, so that herd and the steady state after it can be told apart.

Figures: failed requests (any answer but the expected one, a refused or broken connection,
or a 10 s timeout; goal 0), the 99th percentile of poll latency from opening the connection
to the last byte, over the whole run (goal < 100 ms), and step reports not stored exactly once
(stored twice, or answered "accepted" and missing; goal 0). Comment lines say what else
happened: answers by kind, upgrades that finished, the CPU the API processes and the load
generator used, and how busy the whole machine was, since a shared machine's other work lands
in the latency too.

``--quick`` runs 2,000 agents for 90 s (three polls each, the same intervals: about 67 polls
and 33 heartbeats a second), 20 of them upgrading with a report every 4 s, so that it passes
on a shared CI machine; ``--agents``, ``--seconds``, ``--poll-s`` and ``--heartbeat-s``
change any plan. The database comes from ``FLEETUP_BENCH_DATABASE_URL``, by default
``fleetup_bench`` on the local PostgreSQL server.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench._fleet import free_port
from bench._load import (
    SECRET,
    Login,
    Processes,
    enroll_fleet,
    machine_cpu,
    postgres_database,
)
from bench._report import Figure, emit
from fleetup.core.config import Settings
from fleetup.core.db import make_engine, session_factory
from fleetup.devices.models import DeviceAction, DeviceEvent

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/fleetup_bench"


@dataclass(frozen=True)
class Plan:
    agents: int
    seconds: float
    poll_s: float
    heartbeat_s: float
    step_s: float
    upgrading: int
    api_processes: int = 2
    workers: int = 1


# Poll and heartbeat intervals: the agent's defaults (fleetup.agent.config.AgentConfig).
FULL = Plan(agents=10_000, seconds=600, poll_s=30, heartbeat_s=60, step_s=20, upgrading=100)
QUICK = Plan(agents=2_000, seconds=90, poll_s=30, heartbeat_s=60, step_s=4, upgrading=20)


def _agents(plan: Plan, fleet: list[Login], ports: list[int]) -> dict[str, Any]:
    spec = {
        "ports": ports,
        "duration_s": plan.seconds,
        "poll_s": plan.poll_s,
        "heartbeat_s": plan.heartbeat_s,
        "step_s": plan.step_s,
        "seed": 1,
        "logins": [{"serial": x.serial, "credential": x.credential} for x in fleet],
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench._agents"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=plan.seconds + 300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _stored(settings: Settings) -> tuple[int, int, int]:
    """Step reports stored, distinct (device, event id) among them, upgrades succeeded."""
    engine = make_engine(settings.effective_database_url)
    try:
        with session_factory(engine)() as session:
            events = session.scalar(select(func.count(DeviceEvent.id))) or 0
            distinct = session.scalar(
                select(func.count()).select_from(
                    select(DeviceEvent.device_id, DeviceEvent.event_id).distinct().subquery()
                )
            )
            succeeded = session.scalar(
                select(func.count(DeviceAction.id)).where(DeviceAction.status == "succeeded")
            )
            return events, distinct or 0, succeeded or 0
    finally:
        engine.dispose()


def run(plan: Plan, database_url: str) -> dict[str, Any]:
    """Set up, load, check; returns the generator's result with the database's counts."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            var_dir=Path(tmp) / "var",
            database_url=postgres_database(database_url),
            secret_key=SECRET,
        )
        started = time.monotonic()
        fleet = enroll_fleet(settings, plan.agents, deployed=plan.upgrading)
        print(
            f"# enrolled {len(fleet)} IPCs ({plan.upgrading} with an upgrade deployed) "
            f"in {time.monotonic() - started:.0f} s",
            flush=True,
        )
        ports = [free_port() for _ in range(plan.api_processes)]
        with Processes(settings, Path(tmp) / "logs") as processes:
            for port in ports:
                processes.serve(port, "--no-worker")
            for number in range(plan.workers):
                processes.start(f"worker-{number}", "worker")
            api = processes.running[: plan.api_processes]
            cpu_before = [processes.cpu_seconds(p) or 0.0 for p in processes.running]
            machine_before = machine_cpu()
            result = _agents(plan, fleet, ports)
            cpu = [
                (processes.cpu_seconds(p) or 0.0) - before
                for p, before in zip(processes.running, cpu_before, strict=True)
            ]
            machine_after = machine_cpu()
            result["api_cpu_s"] = sum(cpu[: len(api)])
            result["worker_cpu_s"] = sum(cpu[len(api) :])
            if machine_before and machine_after:
                busy = machine_after[0] - machine_before[0]
                result["machine_busy"] = busy / max(machine_after[1] - machine_before[1], 1e-9)
            alive = sum(1 for p in processes.running if p.poll() is None)
            tracebacks = sum(
                processes.log(name).count("Traceback")
                for name in [f"serve-{p}" for p in ports]
                + [f"worker-{n}" for n in range(plan.workers)]
            )
        result["processes_alive"] = f"{alive}/{plan.api_processes + plan.workers}"
        result["tracebacks"] = tracebacks
        events, distinct, succeeded = _stored(settings)
        result |= {"events_stored": events, "events_distinct": distinct, "succeeded": succeeded}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="2,000 agents for 90 s")
    parser.add_argument("--agents", type=int, help="how many agents (overrides the plan)")
    parser.add_argument("--seconds", type=float, help="how long the load lasts")
    parser.add_argument("--poll-s", type=float, help="each agent's poll interval")
    parser.add_argument("--heartbeat-s", type=float, help="each agent's heartbeat interval")
    options = parser.parse_args()
    plan = QUICK if options.quick else FULL
    chosen = {
        "agents": options.agents,
        "seconds": options.seconds,
        "poll_s": options.poll_s,
        "heartbeat_s": options.heartbeat_s,
    }
    plan = replace(plan, **{name: value for name, value in chosen.items() if value})
    url = os.environ.get("FLEETUP_BENCH_DATABASE_URL", DEFAULT_DATABASE)
    result = run(plan, url)
    answers = ", ".join(f"{key} {count}" for key, count in sorted(result["answers"].items()))
    print(f"# {result['agents']} agents for {result['seconds']:.0f} s: {answers}", flush=True)
    print(
        f"# polls {result['polls']} ({result['polls'] / result['seconds']:.0f}/s), p50 "
        f"{result['poll_p50_s'] * 1000:.1f} ms, max {result['poll_max_s'] * 1000:.0f} ms; "
        f"generator {result['client_cpu_s']:.0f} s CPU, woke late p99 "
        f"{result['late_p99_s'] * 1000:.1f} ms, max {result['late_max_s'] * 1000:.0f} ms",
        flush=True,
    )
    print(
        f"# upgrades: {result['upgrades_seen']} seen, {result['upgrades_reported']} reported "
        f"in full, {result['succeeded']} succeeded on the server; step reports "
        f"{result['steps_sent']} sent, {result['events_stored']} stored "
        f"({result['events_distinct']} distinct); processes alive {result['processes_alive']}, "
        f"tracebacks in their logs {result['tracebacks']}",
        flush=True,
    )
    requests = sum(result["answers"].values())
    print(
        f"# API processes: {result['api_cpu_s']:.0f} s CPU for {requests} answers "
        f"({result['api_cpu_s'] / max(requests, 1) * 1000:.1f} ms each); worker "
        f"{result['worker_cpu_s']:.0f} s; the machine was {result.get('machine_busy', 0):.0%} "
        f"busy ({os.cpu_count()} CPUs, load average at the end {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    for window in result["poll_windows"]:
        print(
            f"# polls sent from {window['from_s']:.0f} s: {window['polls']}, p50 "
            f"{window['p50_s'] * 1000:.1f} ms, p99 {window['p99_s'] * 1000:.1f} ms",
            flush=True,
        )
    for sample in result["error_samples"][:5]:
        print(f"# error: {sample}", flush=True)
    accepted = result["answers"].get("step 200", 0)
    emit(Figure("L1", "failed_requests", result["errors"], "count", "<=", 0))
    emit(Figure("L1", "poll_p99", result["poll_p99_s"] * 1000, "ms", "<", 100))
    # Stored twice, or answered "accepted" and not stored. A report whose answer timed out
    # may be stored without the agent knowing: that is not a mismatch (the agent resends it).
    twice = result["events_stored"] - result["events_distinct"]
    mismatch = twice + max(accepted - result["events_distinct"], 0)
    emit(Figure("L1", "step_reports_not_stored_once", mismatch, "count", "<=", 0))


if __name__ == "__main__":
    main()
