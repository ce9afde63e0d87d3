"""A real server and a real agent process upgrade an IPC program from 1.0.0 to 2.0.0.

The server is ``fleetup serve`` in a subprocess on a free port, over the test database; the
agent is ``fleetup-agent once`` in another. Nothing is faked between them: enrollment, the
ETag poll, the backup upload, the TUF-verified download, the install, the network check, the
registration and the function test all go over HTTP, and the chart 2 instance on the server
shows the steps done with their durations.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from fleetup.api.deps import Server
from fleetup.core.clock import SystemClock
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.devices import service as devices
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import CustomerIn, MachineIn, SiteIn
from fleetup.releases import service as releases
from releases.release_helpers import make_package
from support import Account

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
SERIAL = "YJ-TC1-CNC001"
MIGRATE = b"""
import os, pathlib
data = pathlib.Path(os.environ["FLEETUP_DATA_DIRS"].split(os.pathsep)[0])
(data / "schema.txt").write_text("2\\n")
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def live_server(settings: Settings, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = os.environ | {
        "FLEETUP_VAR_DIR": str(settings.var_dir),
        "FLEETUP_DATABASE_URL": settings.database_url,
        "FLEETUP_SECRET_KEY": settings.secret_key,
        "FLEETUP_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("FLEETUP_CONFIG", None)
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "fleetup"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "server.log").read_text())
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _arrange(parts: Server, settings: Settings, tmp_path: Path) -> str:
    """A machine, release 2.0.0 and an enrollment token; returns the token."""
    with parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=SystemClock())
        fleet.create_customer(ctx, CustomerIn(code="YJ", name="永捷精機"))
        fleet.create_site(ctx, SiteIn(customer_code="YJ", code="TC1", name="台中廠"))
        fleet.create_machine(
            ctx,
            MachineIn(
                serial=SERIAL, model="CNC-5", ipc_os="linux", customer_code="YJ", site_code="TC1"
            ),
        )
        package = make_package(
            tmp_path / "ipc-2.0.0.tar.gz",
            version="2.0.0",
            files={"hooks/migrate.py": MIGRATE, "app.txt": b"v2"},
            hooks={
                "migrate_data": [["{python}", "hooks/migrate.py"]],
                "self_test": [["{python}", "-c", "print('all functions normal')"]],
            },
        )
        releases.add(ctx, settings, path=package, version="2.0.0")
        token = devices.create_enrollment_token(ctx, serial=SERIAL)
        session.commit()
    return token


def _site(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    data = tmp_path / "site" / "data"
    (data / "recipes").mkdir(parents=True)
    (data / "recipes" / "bread.txt").write_text("flour 500g\n")
    (data / "counters.csv").write_text("shift,count\n1,42\n")
    root = tmp_path / "program"
    v1 = root / "versions" / "1.0.0"
    v1.mkdir(parents=True)
    (v1 / "manifest.json").write_text(json.dumps({"version": "1.0.0"}))
    (root / "current").write_text("1.0.0\n")
    before = {
        p.relative_to(data).as_posix(): p.read_bytes() for p in data.rglob("*") if p.is_file()
    }
    return data, root, before


def test_a_real_agent_upgrades_v1_to_v2_through_the_real_server(
    server_parts: Server,
    settings: Settings,
    make_account: Callable[..., Account],
    live_server: str,
    tmp_path: Path,
) -> None:
    token = _arrange(server_parts, settings, tmp_path)
    manager = make_account(Role.manager)
    data, root, before = _site(tmp_path)
    deployed = httpx.post(
        f"{live_server}/api/v1/machines/{SERIAL}/deployments",
        json={"version": "2.0.0", "network": {"primary_url": live_server}},
        headers=manager.headers,
    )
    assert deployed.status_code == 201, deployed.text
    instance_id = deployed.json()["instance_id"]
    trusted = tmp_path / "root.json"
    trusted.write_bytes(releases.tuf_repository(settings).root_bytes())
    work = tmp_path / "work"
    config = tmp_path / "agent.toml"
    config.write_text(
        f"""
[server]
primary_url = "{live_server}"
retries = 2
backoff_s = 0
[device]
serial = "{SERIAL}"
enrollment_token = "{token}"
[paths]
data_dirs = {json.dumps([str(data)])}
install_root = "{root}"
work_dir = "{work}"
tuf_root = "{trusted}"
[agent]
upload_chunk_bytes = 4096
"""
    )
    agent = subprocess.run(
        [str(BIN / "fleetup-agent"), "once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert agent.returncode == 0, agent.stdout + agent.stderr

    assert (root / "current").read_text().strip() == "2.0.0"
    assert (root / "versions" / "2.0.0" / "app.txt").read_bytes() == b"v2"
    after = {p.relative_to(data).as_posix(): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert after == before | {"schema.txt": b"2\n"}

    instance = httpx.get(
        f"{live_server}/api/v1/sop/instances/{instance_id}", headers=manager.headers
    ).json()
    done = {step["node"]: step for step in instance["steps"] if step["status"] == "done"}
    for node in ("F", "I", "J", "L", "N", "O"):
        assert node in done, (node, instance["steps"])
        assert done[node]["started_at"] and done[node]["finished_at"]
        assert done[node]["actual_minutes"] is not None
        assert done[node]["performed_by"] == [f"device:{SERIAL}"]
    assert done["F"]["checks_passed"] == ["B1"] and done["O"]["checks_passed"] == ["F1"]
    assert instance["current_node"] == "Q"
    deployments = httpx.get(
        f"{live_server}/api/v1/machines/{SERIAL}/deployments", headers=manager.headers
    ).json()
    assert deployments[0]["status"] == "succeeded"
