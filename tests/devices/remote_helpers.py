"""A real agent, in-process, against the TestClient server: wiring for the remote action tests.

Requests to the hosts in ``SERVER_HOSTS`` go to the FastAPI app; any other host goes over the
real network (so a URL on a closed local port really fails to connect).
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from fleetup.agent._internal.actions import poll_next_action
from fleetup.agent.config import AgentConfig
from fleetup.agent.register import ensure_enrolled
from fleetup.agent.runner import Outcome, UpgradeRunner
from fleetup.agent.transport import Transport

SERVER_HOSTS = frozenset({"testserver", "localhost"})


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def wire(client: TestClient) -> httpx.MockTransport:
    real = httpx.HTTPTransport()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host not in SERVER_HOSTS:
            return real.handle_request(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        answer = client.request(
            request.method,
            request.url.raw_path.decode(),
            headers=headers,
            content=request.read(),
        )
        kept = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in ("content-encoding", "transfer-encoding", "content-length")
        }
        return httpx.Response(answer.status_code, headers=kept, content=answer.content)

    return httpx.MockTransport(handler)


@dataclass
class Ipc:
    """One IPC on site: its folders, configuration and running agent."""

    config: AgentConfig
    runner: UpgradeRunner
    http: httpx.MockTransport

    @property
    def data(self) -> Path:
        return self.config.data_dirs[0]

    def transport(self) -> Transport:
        return self.runner.transport

    def poll(self) -> dict[str, Any] | None:
        self.runner.flush_reports()
        _, action, _ = poll_next_action(self.runner.transport, None)
        return action

    def poll_and_run(self) -> tuple[dict[str, Any] | None, Outcome | None]:
        action = self.poll()
        if action is None:
            return None, None
        return action, self.runner.run_action(action)

    def restart(self) -> Ipc:
        """A new agent process over the same files."""
        return start_agent(self.config, self.http)


def site(root: Path, *, files: dict[str, bytes]) -> tuple[Path, Path]:
    """A data folder holding ``files`` and a program with 1.0.0 (previous) and 2.0.0 (current)."""
    data = root / "data"
    data.mkdir(parents=True)
    for name, content in files.items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(content)
    program = root / "program"
    for version in ("1.0.0", "2.0.0"):
        folder = program / "versions" / version
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({"version": version}))
    (program / "current").write_text("2.0.0\n")
    (program / "previous").write_text("1.0.0\n")
    return data, program


def make_config(
    root: Path,
    *,
    serial: str,
    token: str | None,
    data: Path,
    program: Path,
    primary_url: str = "http://testserver",
    fallback_url: str | None = None,
) -> AgentConfig:
    return AgentConfig(
        primary_url=primary_url,
        fallback_url=fallback_url,
        serial=serial,
        data_dirs=(data,),
        install_root=program,
        work_dir=root / "work",
        tuf_root=root / "root.json",
        credential_file=root / "work" / "credential.json",
        cloud_settings_file=program / "cloud-connection.json",
        enrollment_token=token,
        retries=1,
        backoff_s=0.0,
        timeout_s=5.0,
        upload_chunk_bytes=4096,
    )


def start_agent(config: AgentConfig, http: httpx.MockTransport) -> Ipc:
    config.work_dir.mkdir(parents=True, exist_ok=True)
    transport = Transport(
        primary_url=config.primary_url,
        fallback_url=config.fallback_url,
        http=http,
        retries=config.retries,
        backoff_s=0,
        timeout_s=config.timeout_s,
    )
    device_id = ensure_enrolled(transport, config)
    runner = UpgradeRunner(config, transport, device_id=device_id, http=http)
    return Ipc(config, runner, http)


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
