"""MQTT wake-ups: a deployment wakes the machine's agent, which polls at once.

Needs an MQTT broker: ``FLEETUP_TEST_MQTT_URL`` (CI sets mqtt://127.0.0.1:1883), else a broker
on 127.0.0.1:1883 if one answers.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fleetup.agent.wake import PollPacer
from fleetup.api.deps import Server
from fleetup.core.context import Ctx
from fleetup.devices import service as devices
from fleetup.devices.schemas import DeploymentIn
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import CustomerIn, MachineIn, SiteIn
from fleetup.notify import delivery
from fleetup.notify import service as notify
from fleetup.notify.models import DeviceWakeup
from fleetup.releases import service as releases
from releases.release_helpers import make_package

SERIAL = "YJ-TC1-CNC001"
POLL_INTERVAL_S = 30.0


def _broker_url() -> str:
    url = os.environ.get("FLEETUP_TEST_MQTT_URL", "")
    if url:
        return url
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
    except OSError:
        pytest.skip("no MQTT broker: FLEETUP_TEST_MQTT_URL is unset and 127.0.0.1:1883 is closed")
    return "mqtt://127.0.0.1:1883"


def _enrolled_device(parts: Server, tmp_path: Path) -> int:
    with parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=parts.clock)
        fleet.create_customer(ctx, CustomerIn(code="YJ", name="永捷精機"))
        fleet.create_site(ctx, SiteIn(customer_code="YJ", code="TC1", name="台中廠"))
        fleet.create_machine(
            ctx,
            MachineIn(
                serial=SERIAL, model="CNC-5", ipc_os="linux", customer_code="YJ", site_code="TC1"
            ),
        )
        package = make_package(tmp_path / "ipc-2.tar.gz", version="2.0.0", files={"bin/run": b"x"})
        releases.add(ctx, parts.settings, path=package, version="2.0.0")
        token = devices.create_enrollment_token(ctx, serial=SERIAL)
        caller, _ = devices.enroll(ctx, token=token, serial=SERIAL, hardware={"os": "linux"})
        session.commit()
        return caller.id


def _deploy(parts: Server) -> None:
    with parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=parts.clock)
        devices.deploy(
            ctx,
            parts.library,
            serial=SERIAL,
            data=DeploymentIn(version="2.0.0"),
            base_url="http://127.0.0.1:8000",
        )
        session.commit()


def _pending(parts: Server) -> int:
    with parts.sessions() as session:
        return session.scalar(select(func.count(DeviceWakeup.id))) or 0


def test_without_a_broker_configured_wake_is_a_no_op(parts: Server, tmp_path: Path) -> None:
    _enrolled_device(parts, tmp_path)
    _deploy(parts)
    assert _pending(parts) == 0
    assert delivery.publish_wakeups(parts) == 0


def test_a_deployment_wakes_the_agent_which_polls_at_once(
    server_parts: Server, tmp_path: Path
) -> None:
    url = _broker_url()
    parts = server_parts
    notify.use_settings(parts.engine, parts.settings.model_copy(update={"mqtt_url": url}))
    parts.settings = parts.settings.model_copy(update={"mqtt_url": url})
    device_id = _enrolled_device(parts, tmp_path)

    pacer = PollPacer(url, tmp_path / "no-cloud-settings.json", f"dev-{device_id}")
    polls: list[float] = []
    stop = threading.Event()

    def agent_loop() -> None:
        while not stop.is_set():
            polls.append(time.monotonic())
            pacer.wait(POLL_INTERVAL_S)

    pacer.refresh()
    assert pacer.listener is not None
    assert pacer.listener.subscribed.wait(10), "the agent did not subscribe to its wake topic"
    thread = threading.Thread(target=agent_loop, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(polls) < 2 and time.monotonic() < deadline:  # the poll after subscribing
            time.sleep(0.05)
        settled = len(polls)
        _deploy(parts)
        assert _pending(parts) == 1
        published_at = time.monotonic()
        assert delivery.publish_wakeups(parts) == 1
        assert _pending(parts) == 0
        while len(polls) == settled and time.monotonic() < published_at + 10:
            time.sleep(0.02)
        assert len(polls) == settled + 1, "the agent was not woken"
        assert polls[-1] - published_at < 5.0  # against a 30 s poll interval
    finally:
        stop.set()
        pacer.close()
        thread.join(timeout=5)
