"""The worker loop: jobs on the server's clock, failures contained, a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from fleetup.api.deps import Server
from fleetup.core.clock import ManualClock
from fleetup.core.context import Ctx
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import CustomerIn
from fleetup.notify import delivery
from fleetup.notify.models import QUEUED, Notification
from fleetup.worker import Job, Scheduler, run_until
from fleetup.worker.jobs import JOBS


def test_a_failing_job_waits_its_interval_and_the_others_still_run(
    server_parts: Server, clock: ManualClock
) -> None:
    ran: list[str] = []

    def broken(parts: Server) -> int:
        ran.append("broken")
        raise RuntimeError("boom")

    def fine(parts: Server) -> int:
        ran.append("fine")
        return 1

    scheduler = Scheduler(
        [Job("broken", timedelta(minutes=1), broken), Job("fine", timedelta(seconds=1), fine)]
    )
    assert scheduler.run_due_safely(server_parts) == {"fine": 1}
    clock.advance(timedelta(seconds=1))
    assert scheduler.run_due_safely(server_parts) == {"fine": 1}
    assert ran == ["broken", "fine", "fine"]


def test_the_loop_stops_when_told(server_parts: Server) -> None:
    calls: list[int] = []
    stop = threading.Event()

    def count(parts: Server) -> int:
        calls.append(1)
        return 0

    thread = threading.Thread(
        target=run_until,
        args=(server_parts, stop, [Job("count", timedelta(0), count)]),
        kwargs={"tick_s": 0.01},
    )
    thread.start()
    time.sleep(0.2)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(calls) >= 2


def test_delivery_is_registered(server_parts: Server) -> None:
    names = [job.name for job in JOBS]
    assert "notify.deliver_due" in names and "notify.publish_wakeups" in names
    assert all(
        isinstance(job.run(server_parts), int) for job in JOBS if job.name.startswith("notify.")
    )


def test_fleetup_worker_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FLEETUP_VAR_DIR": str(tmp_path / "var"),
        "FLEETUP_SECRET_KEY": "test-secret-key-not-for-production",
    }
    env.pop("FLEETUP_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-c", "from fleetup.cli import app; app()", "worker", "--tick", "0.1"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        seen = ""
        while "fleetup worker runs" not in seen and time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line, f"the worker ended early: {seen}"
            seen += line
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "Stopping" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()


def _queue_notification(parts: Server, at: datetime) -> None:
    with parts.sessions() as session:
        session.add(
            Notification(
                template="test",
                key=f"test-{at.isoformat()}",
                recipient="role:manager",
                language="en",
                channel="webhook",
                subject="subject",
                body="body",
                status=QUEUED,
                created_at=at,
                next_attempt_at=at,
            )
        )
        session.commit()


def _deliveries(ran: list[str]) -> Job:
    def deliver(parts: Server) -> int:
        ran.append("deliver")
        return 0

    return Job("deliver", timedelta(0), deliver, pending=delivery.deliveries_pending)


def test_a_job_with_nothing_pending_is_skipped_until_something_is(
    server_parts: Server, clock: ManualClock
) -> None:
    ran: list[str] = []
    scheduler = Scheduler([_deliveries(ran)])
    assert scheduler.run_due(server_parts) == {}
    assert ran == []
    assert scheduler.last_run["deliver"] == clock.now()  # an idle job counts as run

    _queue_notification(server_parts, clock.now() + timedelta(minutes=5))
    clock.advance(timedelta(minutes=1))
    assert scheduler.run_due(server_parts) == {}  # queued, but not due yet

    clock.advance(timedelta(minutes=4))
    assert scheduler.run_due(server_parts) == {"deliver": 0}
    assert ran == ["deliver"]


def test_work_a_job_leaves_for_a_later_one_is_done_in_the_same_tick(
    server_parts: Server, clock: ManualClock
) -> None:
    ran: list[str] = []

    def queue(parts: Server) -> int:
        ran.append("queue")
        _queue_notification(parts, clock.now())
        return 1

    scheduler = Scheduler([Job("queue", timedelta(hours=1), queue), _deliveries(ran)])
    assert scheduler.run_due(server_parts) == {"queue": 1, "deliver": 0}
    assert ran == ["queue", "deliver"]


def test_a_job_watching_a_table_runs_again_only_after_an_audited_change_to_it(
    server_parts: Server, clock: ManualClock
) -> None:
    ran: list[str] = []

    def follow(parts: Server) -> int:
        ran.append("follow")
        return 0

    scheduler = Scheduler([Job("follow", timedelta(0), follow, changes=("customers",))])
    assert scheduler.run_due(server_parts) == {"follow": 0}  # never ran: it runs
    assert scheduler.run_due(server_parts) == {}  # nothing changed since

    _queue_notification(server_parts, clock.now())  # another table: still nothing to do
    assert scheduler.run_due(server_parts) == {}

    with server_parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=clock)
        fleet.create_customer(ctx, CustomerIn(code="YJ", name="永捷精機"))
        session.commit()
    assert scheduler.run_due(server_parts) == {"follow": 0}
    assert scheduler.run_due(server_parts) == {}
    assert ran == ["follow", "follow"]


def test_a_watching_job_that_failed_runs_again_without_waiting_for_a_change(
    server_parts: Server,
) -> None:
    ran: list[str] = []

    def broken(parts: Server) -> int:
        ran.append("broken")
        raise RuntimeError("boom")

    scheduler = Scheduler([Job("broken", timedelta(0), broken, changes=("customers",))])
    assert scheduler.run_due_safely(server_parts) == {}
    assert scheduler.run_due_safely(server_parts) == {}
    assert ran == ["broken", "broken"]
