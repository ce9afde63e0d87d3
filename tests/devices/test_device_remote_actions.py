"""Remote actions end to end: the server queues them, the real agent runs them in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from device_helpers import SERIAL
from fastapi.testclient import TestClient
from remote_helpers import Ipc, closed_port, make_config, site, start_agent, tree, wire
from sqlalchemy import select

from fleetup.agent.heartbeat import send_heartbeat
from fleetup.agent.runner import Outcome
from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict, NotFound
from fleetup.devices import remote
from fleetup.devices import service as devices
from fleetup.devices.models import Device

FILES = {
    "recipes/bread.txt": b"flour 500g\n",
    "counters.csv": b"shift,count\n1,42\n",
    "blob.bin": bytes(range(256)) * 64,
}


@pytest.fixture
def ipc(ctx: Ctx, client: TestClient, machines: list[str], tmp_path: Path) -> Callable[..., Ipc]:
    def make(name: str = "ipc-a", **urls: Any) -> Ipc:
        token = devices.create_enrollment_token(ctx, serial=SERIAL)
        ctx.session.commit()
        data, program = site(tmp_path / name, files=FILES)
        config = make_config(
            tmp_path / name, serial=SERIAL, token=token, data=data, program=program, **urls
        )
        return start_agent(config, wire(client))

    return make


def _snapshot(ctx: Ctx, agent: Ipc) -> str:
    action_id = remote.request_snapshot(ctx, serial=SERIAL, reason="before maintenance")
    ctx.session.commit()
    action, outcome = agent.poll_and_run()
    assert action is not None and action["id"] == action_id and action["kind"] == "snapshot"
    assert outcome is Outcome.DONE
    return action_id


def _state(ctx: Ctx, action_id: str) -> remote.RemoteState:
    ctx.session.expire_all()
    return remote.action_state(ctx.session, action_id=action_id)


def test_snapshot_uploads_a_verified_backup_and_the_action_keeps_its_evidence(
    ctx: Ctx, ipc: Callable[..., Ipc]
) -> None:
    agent = ipc()
    action_id = _snapshot(ctx, agent)
    state = _state(ctx, action_id)
    assert (state.kind, state.status) == ("snapshot", "succeeded")
    evidence = state.evidence["snapshot"]
    assert evidence["verified"] is True and evidence["files"] == len(FILES)
    assert evidence["backup_id"].startswith("bk-") and evidence["reason"] == "before maintenance"


def test_system_restore_returns_the_previous_version_with_the_backed_up_data(
    ctx: Ctx, ipc: Callable[..., Ipc]
) -> None:
    agent = ipc()
    _snapshot(ctx, agent)
    backed_up = tree(agent.data)
    (agent.data / "counters.csv").write_bytes(b"garbled by a bad upgrade")
    (agent.data / "stray.tmp").write_bytes(b"left by the new version")

    action_id = remote.request_restore(ctx, serial=SERIAL, reason="upgrade broke the recipes")
    ctx.session.commit()
    action, outcome = agent.poll_and_run()

    assert action is not None and action["kind"] == "restore" and outcome is Outcome.DONE
    root = agent.config.install_root
    assert (root / "current").read_text().strip() == "1.0.0"
    assert (root / "previous").read_text().strip() == "2.0.0"
    assert tree(agent.data) == backed_up
    aside = list(agent.data.parent.glob("data.before-restore-*"))
    assert len(aside) == 1 and (aside[0] / "stray.tmp").read_bytes() == b"left by the new version"
    state = _state(ctx, action_id)
    assert state.status == "succeeded"
    assert state.evidence["restore"]["from_version"] == "2.0.0"
    assert state.evidence["restore"]["current"] == "1.0.0"


def test_a_spare_swap_moves_identity_and_data_to_the_spare(
    ctx: Ctx,
    client: TestClient,
    ipc: Callable[..., Ipc],
    deploy: Callable[[str], dict[str, Any]],
) -> None:
    old = ipc("ipc-old")
    _snapshot(ctx, old)
    backed_up = tree(old.data)
    upgrade = deploy(SERIAL)
    old_credential = old.transport().credential

    token = remote.swap_spare(ctx, serial=SERIAL, reason="IPC mainboard failed")
    ctx.session.commit()

    refused = client.get(
        "/device/v1/actions/next", headers={"Authorization": f"Bearer {old_credential}"}
    )
    assert refused.status_code in (401, 403)
    spare_root = old.config.work_dir.parent.parent / "ipc-spare"
    data, program = site(spare_root, files={})
    (data / "factory-default.txt").write_bytes(b"spare as shipped")
    config = make_config(spare_root, serial=SERIAL, token=token, data=data, program=program)
    spare = start_agent(config, old.http)
    assert spare.transport().credential != old_credential

    action, outcome = spare.poll_and_run()
    assert action is not None and action["kind"] == "restore" and outcome is Outcome.DONE
    assert tree(spare.data) == backed_up
    assert (program / "current").read_text().strip() == "2.0.0"  # data only, program kept
    after = client.get(
        "/device/v1/actions/next", headers={"Authorization": f"Bearer {old_credential}"}
    )
    assert after.status_code in (401, 403)
    following = spare.poll()
    assert following is not None
    assert (following["id"], following["kind"]) == (upgrade["action_id"], "upgrade")


def test_the_4g_fallback_is_used_when_the_primary_is_unreachable(
    ctx: Ctx, ipc: Callable[..., Ipc]
) -> None:
    agent = ipc(primary_url=f"http://127.0.0.1:{closed_port()}", fallback_url="http://localhost")
    action_id = remote.request_fallback(ctx, serial=SERIAL)
    ctx.session.commit()

    action, outcome = agent.poll_and_run()
    assert action is not None and action["kind"] == "fallback" and outcome is Outcome.DONE
    state = _state(ctx, action_id)
    assert state.status == "succeeded"
    assert state.evidence["switch_network"]["link"] == "4g"
    assert state.evidence["switch_network"]["url"] == "http://localhost"

    restarted = agent.restart()
    assert restarted.transport().link == "4g"
    record = send_heartbeat(
        restarted.transport(),
        version="2.0.0",
        work_dir=agent.config.work_dir,
        state_file=agent.config.heartbeat_file,
    )
    assert record["ok"] is True and record["link"] == "4g"
    ctx.session.expire_all()
    device = ctx.session.scalar(select(Device))
    assert device is not None and device.link == "4g"


def test_diagnostics_evidence_lists_dns_route_and_reachability_per_url(
    ctx: Ctx, ipc: Callable[..., Ipc]
) -> None:
    port = closed_port()
    agent = ipc(primary_url=f"http://127.0.0.1:{port}", fallback_url="http://localhost")
    action_id = remote.request_diagnostics(ctx, serial=SERIAL)
    ctx.session.commit()
    _, outcome = agent.poll_and_run()
    assert outcome is Outcome.DONE

    evidence = _state(ctx, action_id).evidence["diagnose"]
    checks = {check["link"]: check for check in evidence["checks"]}
    assert set(checks) == {"primary", "fallback"}
    primary, fallback = checks["primary"], checks["fallback"]
    assert primary["url"] == f"http://127.0.0.1:{port}"
    assert primary["dns"]["ok"] is True and "127.0.0.1" in primary["dns"]["addresses"]
    assert primary["route"]["ok"] is True
    assert primary["reachable"]["ok"] is False and "ConnectError" in primary["reachable"]["error"]
    assert fallback["dns"]["ok"] is True and fallback["route"]["ok"] is True
    assert fallback["reachable"] == fallback["reachable"] | {"ok": True, "status": 200}
    assert evidence["reachable"] == ["fallback"]


def test_a_tampered_immutable_file_appears_in_the_next_heartbeat(
    ctx: Ctx, ipc: Callable[..., Ipc]
) -> None:
    agent = ipc()
    (agent.data / ".fleetup-immutable").write_text("recipes/*\n")
    _snapshot(ctx, agent)
    beat = {"version": "2.0.0", "work_dir": agent.config.work_dir}
    send_heartbeat(agent.transport(), state_file=agent.config.heartbeat_file, **beat)
    ctx.session.expire_all()
    device = ctx.session.scalar(select(Device))
    assert device is not None and "anomalies" not in device.health

    (agent.data / "recipes" / "bread.txt").write_bytes(b"flour 5000g\n")
    (agent.data / "counters.csv").write_bytes(b"shift,count\n1,43\n")  # not immutable: fine
    send_heartbeat(agent.transport(), state_file=agent.config.heartbeat_file, **beat)
    ctx.session.expire_all()
    device = ctx.session.scalar(select(Device))
    assert device is not None
    found = device.health["anomalies"]
    assert [(a["kind"], Path(a["path"]).name) for a in found] == [
        ("checksum_mismatch", "bread.txt")
    ]


def test_remote_requests_refuse_a_second_open_one_and_a_restore_without_backup(
    ctx: Ctx, ipc: Callable[..., Ipc]
) -> None:
    ipc()
    with pytest.raises(NotFound, match="no verified backup"):
        remote.request_restore(ctx, serial=SERIAL, reason="x")
    with pytest.raises(NotFound, match="no verified backup"):
        remote.swap_spare(ctx, serial=SERIAL, reason="x")
    first = remote.request_diagnostics(ctx, serial=SERIAL)
    with pytest.raises(Conflict, match=first):
        remote.request_diagnostics(ctx, serial=SERIAL)
    assert remote.request_snapshot(ctx, serial=SERIAL, reason="y") != first


def test_remote_requests_need_an_enrolled_ipc(ctx: Ctx, machines: list[str]) -> None:
    with pytest.raises(NotFound, match="no enrolled IPC"):
        remote.request_diagnostics(ctx, serial=SERIAL)
    with pytest.raises(NotFound):
        remote.request_snapshot(ctx, serial="NO-SUCH-MACHINE", reason="x")
