"""What the crash suite needs: a ``fleetup serve`` that can be SIGKILLed and started again
quickly, a gate that parks it at an exact moment, a plan of seeded kill moments, the
simulator's view of what the server acknowledged, and the database's facts after a run.

A restart is a new process running ``fleetup serve`` with the same command line. Python's
imports cost seconds on a shared machine, twenty times per run, so each new process is forked
from a fork server that has imported fleetup once; it then does everything ``fleetup serve``
does (settings, migrations, the stored clock, binding the port).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

import fleetup.tables
from fleetup.core.db import make_engine, session_factory
from fleetup.devices.models import Device, DeviceAction, DeviceEvent
from fleetup.fleet.models import Machine

HERE = Path(__file__).resolve().parent
# The fork server: imports fleetup once, then forks one ``fleetup serve`` per line it reads
# ("<arguments>\t<log file>"), each child in a session of its own, and writes its pid back.
FORK_SERVER = (
    "import os, signal, sys\n"
    f"sys.path.insert(0, {str(HERE)!r})\n"
    "import fleetup.cli, fleetup.api.app, uvicorn, crash_helpers\n"
    "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
    "for line in sys.stdin:\n"
    "    arguments, log = line.rstrip('\\n').split('\\t')\n"
    "    pid = os.fork()\n"
    "    if pid == 0:\n"
    "        crash_helpers.become_server(arguments.split(), log)\n"
    "    print(pid, flush=True)\n"
)
CLOCK = "clock"
DEVICE = "device"
PEOPLE = "people"
KINDS = (CLOCK, DEVICE, PEOPLE)
# When a kill lands: a few milliseconds after the request was sent (before, inside or after
# the server's work), or parked by the gate at the narrowest moment of each kind of work.
TIMED = "timed"
ANSWER_LOST = "answer_lost"  # a keyed request committed, its answer not sent yet
JOB_DONE = "job_done"  # a clock move's job committed its work, its run not stored yet
GATE_ENV = "FLEETUP_CRASH_GATE"


def install_gate() -> None:
    """Inside the server: park at the moment the test armed (see ``Witness``), so it can be
    killed exactly there. Nothing of the server's behaviour changes: the gate only waits.

    The test arms the gate by writing ``<gate>/park`` (for ``job_done``: how many job runs
    to let pass first); the server writes ``<gate>/parked`` and sleeps until SIGKILL.
    """
    where = os.environ.get(GATE_ENV, "")
    if not where:
        return
    gate = Path(where)
    from fleetup.core import idempotency, simulated_clock

    def park(what: str) -> None:
        (gate / "parked").write_text(what)
        while True:
            time.sleep(60)

    def armed(moment: str) -> bool:
        try:
            order = json.loads((gate / "park").read_text())
        except (FileNotFoundError, ValueError):
            return False
        if order["moment"] != moment:
            return False
        if order.get("skip", 0) > 0:
            order["skip"] -= 1
            (gate / "park").write_text(json.dumps(order))
            return False
        (gate / "park").unlink()
        return True

    keep, save_job_run = idempotency.keep, simulated_clock.save_job_run

    def gated_keep(connection: Any, **answer: Any) -> None:
        keep(connection, **answer)
        if armed(ANSWER_LOST):
            park(f"answer of {answer['status']} kept")

    def gated_save_job_run(engine: Any, name: str, at: Any) -> None:
        if armed(JOB_DONE):
            park(f"job {name} done, its run not stored")
        save_job_run(engine, name, at)

    idempotency.keep = gated_keep  # type: ignore[assignment]
    simulated_clock.save_job_run = gated_save_job_run  # type: ignore[assignment]


def kind_of(path: str) -> str:
    """Which part of the server a request exercises: the worker (a clock move), the device
    API, or the people's API."""
    if "/simulation/" in path:
        return CLOCK
    return DEVICE if path.startswith("/device/") else PEOPLE


def server_env(database_url: str, var_dir: Path, secret_key: str) -> dict[str, str]:
    """The environment of a server over the test's database, and nothing else of fleetup's."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FLEETUP_")} | {
        "FLEETUP_DATABASE_URL": database_url,
        "FLEETUP_VAR_DIR": str(var_dir),
        "FLEETUP_SECRET_KEY": secret_key,
    }


def become_server(arguments: list[str], log: str) -> None:
    """In a child of the fork server: ``fleetup <arguments>`` in a session of its own."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    output = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    nothing = os.open(os.devnull, os.O_RDONLY)
    os.dup2(nothing, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    install_gate()
    sys.argv = ["fleetup", *arguments]
    code = 0
    try:
        import fleetup.cli

        fleetup.cli.app()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        os._exit(code)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class CrashableServer:
    """``fleetup serve --simulated-clock`` on one port, killed with SIGKILL and started again.

    Every start is a fresh process forked from a fork server that has imported fleetup (so a
    restart costs the server's own start, not Python's imports) and runs all of ``fleetup
    serve``: settings, migrations, the stored clock, binding the port. Each runs in a process
    group of its own, which SIGKILL takes down whole.
    """

    def __init__(self, env: dict[str, str], cwd: Path, port: int, start: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.arguments = f"serve --host 127.0.0.1 --port {port} --simulated-clock {start}"
        self.log = cwd / "server.log"
        self.pid = 0
        self.starts = 0
        self.forks = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER],
            env=env | {"FLEETUP_BASE_URL": self.url},
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def start(self) -> None:
        assert self.forks.stdin is not None and self.forks.stdout is not None
        self.forks.stdin.write(f"{self.arguments}\t{self.log}\n")
        self.forks.stdin.flush()
        self.pid = int(self.forks.stdout.readline())
        self.starts += 1

    def wait_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if _gone(self.pid) or time.monotonic() > deadline:
                raise RuntimeError(f"{self.url} did not come up:\n{self.log.read_text()[-4000:]}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL the serving process group, the server and its worker together."""
        os.killpg(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not _gone(self.pid):
            assert time.monotonic() < deadline, f"server {self.pid} outlived SIGKILL"
            time.sleep(0.005)

    def stop(self) -> None:
        if self.pid and not _gone(self.pid):
            os.killpg(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while not _gone(self.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not _gone(self.pid):
                self.kill()
        self.forks.terminate()
        self.forks.wait(timeout=10)


@contextmanager
def crashable_server(
    env: dict[str, str], cwd: Path, port: int, start: str
) -> Iterator[CrashableServer]:
    server = CrashableServer(env, cwd, port, start)
    try:
        server.start()
        server.wait_up()
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Target:
    """Kill during the first request of ``kind`` once ``after`` requests were answered: at
    ``moment``, and for a timed one ``delay`` seconds after the simulator sent it."""

    after: int
    kind: str
    moment: str
    delay: float = 0.0
    skip: int = 0  # job_done: job runs to let pass in the move first


def kill_plan(
    rng: random.Random, *, kills: int, requests: int, latency: dict[str, float]
) -> list[Target]:
    """``kills`` moments spread over the busy part of a run, its first ``requests`` requests,
    the kinds in turn.

    Half of each kind's kills are timed, the delay drawn up to one and a half times the
    kind's mean answer time, so they land before, inside or just after the server's work;
    the other half are parked at the narrowest moment of that work.
    """
    first, last = int(requests * 0.03), int(requests * 0.9)
    positions = sorted(rng.sample(range(first, last), kills))
    kinds = [KINDS[number % len(KINDS)] for number in range(kills)]
    moments = [TIMED if number % 2 == 0 else None for number in range(kills)]
    rng.shuffle(kinds)
    rng.shuffle(moments)
    plan = []
    for at, kind, moment in zip(positions, kinds, moments, strict=True):
        if moment == TIMED:
            delay = rng.uniform(0, 1.5 * latency.get(kind, 0.005))
            plan.append(Target(at, kind, TIMED, delay=delay))
        elif kind == CLOCK:
            plan.append(Target(at, kind, JOB_DONE, skip=rng.randrange(4)))
        else:
            plan.append(Target(at, kind, ANSWER_LOST))
    return plan


@dataclass
class Kill:
    """One kill as it happened: during which request, how long after it was sent."""

    target: Target
    request: int
    path: str
    parked: str = ""
    restart_s: float = 0.0


@dataclass
class Witness:
    """What the simulator saw: the requests it sent and the step reports the server took.

    Its hooks go on the simulator's HTTP client; they run in the simulator's thread.
    """

    answered: int = 0
    # The answered count at the last clock move whose jobs handled something: past it, the
    # campaign's work is over and the people only look, so kills are planned before it.
    busy_until: int = 0
    # (action id, event id) of every step report answered 200, and each report's step/status.
    acknowledged: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    plan: list[Target] = field(default_factory=list)
    gate: Path | None = None
    armed: threading.Event = field(default_factory=threading.Event)
    victim: tuple[int, str, float] | None = None
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_request(self, request: httpx.Request) -> None:
        with self._lock:
            if self._next >= len(self.plan) or self.victim is not None:
                return
            target = self.plan[self._next]
            if self.answered < target.after:
                return
            if target.moment == ANSWER_LOST:
                # Only a keyed request has an answer kept for it; late in a run the people
                # send few, so after a while any keyed request will do.
                if "idempotency-key" not in request.headers:
                    return
                if kind_of(request.url.path) != target.kind and self.answered < target.after + 50:
                    return
            elif kind_of(request.url.path) != target.kind:
                return
            if target.moment != TIMED:
                assert self.gate is not None
                order = {"moment": target.moment, "skip": target.skip}
                (self.gate / "park").write_text(json.dumps(order))
            self.victim = (self.answered + 1, request.url.path, time.monotonic())
            self.armed.set()

    def on_response(self, response: httpx.Response) -> None:
        """Count the answered requests (sends cut off by a kill get none) and keep the step
        reports the server took."""
        with self._lock:
            self.answered += 1
        request = response.request
        path = request.url.path
        if path == "/api/v1/simulation/clock" and request.method == "POST":
            response.read()
            if response.status_code == 200 and any(response.json().get("jobs", {}).values()):
                self.busy_until = self.answered
        if (
            request.method == "POST"
            and path.startswith("/device/v1/actions/")
            and path.endswith("/events")
            and response.status_code == 200
        ):
            action = path.split("/")[-2]
            report = json.loads(request.content)
            self.acknowledged[(action, report["event_id"])] = (report["step"], report["status"])

    def next_kill(self, timeout: float) -> tuple[Target, tuple[int, str, float]] | None:
        """Wait until the simulator sends the next planned victim."""
        if not self.armed.wait(timeout):
            return None
        with self._lock:
            assert self.victim is not None
            return self.plan[self._next], self.victim

    def parked(self, timeout: float) -> str:
        """Wait for the server to park at the gate; what it says it parked at ("" if the
        moment did not come: a move with fewer jobs due)."""
        assert self.gate is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return (self.gate / "parked").read_text()
            except FileNotFoundError:
                time.sleep(0.005)
        return ""

    def disarm(self) -> None:
        """Take the gate's orders back before the next server starts."""
        if self.gate is not None:
            for name in ("park", "parked"):
                (self.gate / name).unlink(missing_ok=True)

    def killed(self) -> None:
        """The victim was killed and the server is back: arm the next target."""
        with self._lock:
            self._next += 1
            self.victim = None
            self.armed.clear()

    @property
    def done(self) -> bool:
        return self._next >= len(self.plan)

    def hook(self, client: httpx.Client) -> None:
        client.event_hooks["request"].append(self.on_request)
        client.event_hooks["response"].append(self.on_response)


@dataclass(frozen=True)
class Facts:
    """What the database holds after a run, in terms that do not depend on row ids."""

    rows: dict[str, int]
    events: dict[
        tuple[str, str], tuple[str, str, str]
    ]  # (action, event id) -> serial, step, status
    duplicates: int
    steps: Counter[tuple[str, str, str]]  # (serial, step, status) -> reports
    devices: dict[str, tuple[str, str]]  # serial -> version, link

    def succeeded_once(self) -> dict[tuple[str, str], int]:
        """Per (action, step) reported succeeded: how many succeeded reports the server kept."""
        found: Counter[tuple[str, str]] = Counter()
        for (action, _event), (_serial, step, status) in self.events.items():
            if status == "succeeded":
                found[(action, step)] += 1
        return dict(found)


def facts(database_url: str) -> Facts:
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            rows = {
                table.name: int(session.scalar(select(func.count()).select_from(table)) or 0)
                for table in fleetup.tables.metadata.sorted_tables
            }
            found = session.execute(
                select(
                    DeviceEvent.action_id,
                    DeviceEvent.event_id,
                    Machine.serial,
                    DeviceEvent.step,
                    DeviceEvent.status,
                )
                .join(Device, Device.id == DeviceEvent.device_id)
                .join(Machine, Machine.id == Device.machine_id)
                .join(DeviceAction, DeviceAction.id == DeviceEvent.action_id)
            ).all()
            devices = {
                serial: (version or "", link or "")
                for serial, version, link in session.execute(
                    select(Machine.serial, Device.version, Device.link).join(
                        Device, Device.machine_id == Machine.id
                    )
                )
            }
    finally:
        engine.dispose()
    events = {(f"act-{a}", e): (serial, step, status) for a, e, serial, step, status in found}
    return Facts(
        rows=rows,
        events=events,
        duplicates=len(found) - len(events),
        steps=Counter((serial, step, status) for serial, step, status in events.values()),
        devices=devices,
    )


def env_int(name: str, default: int) -> int:
    """An integer from the environment (a longer soak), else ``default``."""
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def report_line(path: Path, **figures: Any) -> None:
    """Append the run's measured figures to ``path`` (one JSON object a line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(figures, sort_keys=True, default=str) + "\n")


@contextmanager
def watching(witness: Witness) -> Iterator[None]:
    """Put ``witness``'s hooks on the HTTP client of the simulator's next URL-mode run."""
    from fleetup.sim import runner

    original = runner.remote

    @contextmanager
    def remote(settings: Any, url: str, start: Any) -> Iterator[Any]:
        with original(settings, url, start) as (client, ctx, transport):
            witness.hook(client)
            yield client, ctx, transport

    runner.remote = remote  # type: ignore[assignment]
    try:
        yield
    finally:
        runner.remote = original  # type: ignore[assignment]
