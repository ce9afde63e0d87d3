"""A4: the automated part of an upgrade, timed, as a share of the SOP's 55 minutes for it.

A real ``fleetup serve`` (demo fleet) gets release 9.0.0 (``fleetup release add``: 200 MB
package, ``--quick`` 20 MB, with a ``self_test`` hook), a manager queues it for one machine
(``POST /api/v1/machines/{serial}/deployments``), and a real ``fleetup-agent once`` process,
enrolled with a one-time token, runs the upgrade against it over 127.0.0.1: backup of a
generated 1 GB data folder (``--quick`` 100 MB; archive, verify, upload), TUF-verified
download, install, network, register and function test. The agent's wall time (heartbeat
and poll included) is divided by chart 3's budget for those steps, 10+15+10+5+15 = 55 min.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench._fleet import FLEETUP_AGENT, MB, LiveServer, make_package, make_site_data
from bench._report import Figure, emit

SOP_SECONDS = (10 + 15 + 10 + 5 + 15) * 60
VERSION = "9.0.0"


def _site(tmp: Path, data_bytes: int) -> tuple[Path, Path]:
    data = tmp / "site" / "data"
    make_site_data(data, data_bytes)
    root = tmp / "program"
    v1 = root / "versions" / "1.0.0"
    v1.mkdir(parents=True)
    (v1 / "manifest.json").write_text(json.dumps({"version": "1.0.0"}))
    (root / "current").write_text("1.0.0\n")
    return data, root


def main() -> None:
    quick = "--quick" in sys.argv
    data_bytes = (100 if quick else 1024) * MB
    package_bytes = (20 if quick else 200) * MB
    with tempfile.TemporaryDirectory(prefix="bench-a4-") as tmp_name:
        tmp = Path(tmp_name)
        data, root = _site(tmp, data_bytes)
        package = make_package(
            tmp / f"ipc-{VERSION}.tar.gz",
            version=VERSION,
            payload_bytes=package_bytes,
            hooks={"self_test": [["{python}", "-c", "print('all functions normal')"]]},
        )
        with LiveServer(tmp) as server:
            server.add_release(package, VERSION)
            trusted = tmp / "root.json"
            server.cli("keys", "export-root", str(trusted))
            manager = {"Authorization": f"Bearer {server.manager_token()}"}
            serial = server.first_serial(manager["Authorization"].split()[1])
            token = server.enrollment_token(serial)
            deployed = httpx.post(
                f"{server.url}/api/v1/machines/{serial}/deployments",
                json={"version": VERSION, "network": {"primary_url": server.url}},
                headers=manager,
                timeout=30,
            )
            if deployed.status_code != 201:
                raise RuntimeError(f"deployment refused: {deployed.text}")
            config = tmp / "agent.toml"
            config.write_text(
                f"""
[server]
primary_url = "{server.url}"
retries = 2
backoff_s = 0
timeout_s = 120
[device]
serial = "{serial}"
enrollment_token = "{token}"
[paths]
data_dirs = {json.dumps([str(data)])}
install_root = "{root}"
work_dir = "{tmp / "work"}"
tuf_root = "{trusted}"
[agent]
upload_chunk_bytes = {8 * MB}
"""
            )
            started = time.perf_counter()
            agent = subprocess.run(
                [FLEETUP_AGENT, "once", "--config", str(config)],
                capture_output=True,
                text=True,
                timeout=1800,
                check=False,
            )
            wall = time.perf_counter() - started
            if agent.returncode != 0:
                raise RuntimeError(f"fleetup-agent once failed:\n{agent.stdout}{agent.stderr}")
            if (root / "current").read_text().strip() != VERSION:
                raise RuntimeError("the agent finished but did not switch to the new version")
            actions = httpx.get(
                f"{server.url}/api/v1/machines/{serial}/deployments", headers=manager, timeout=30
            ).json()
            if actions[0]["status"] != "succeeded":
                raise RuntimeError(f"the deployment is {actions[0]['status']}")
    print(
        f"# agent wall time {wall:.1f} s for {data_bytes / MB:.0f} MB data, "
        f"{package_bytes / MB:.0f} MB package",
        flush=True,
    )
    emit(Figure("A4", "automated_steps_vs_sop", wall / SOP_SECONDS * 100, "%", "<=", 2))


if __name__ == "__main__":
    main()
