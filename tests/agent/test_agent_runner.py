"""A whole upgrade v1 → v2 against a fake server, failures, rollbacks and crash resumes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import FakeDeviceServer, TufRepo, make_package

from fleetup.agent import cli, install
from fleetup.agent._internal.actions import poll_next_action
from fleetup.agent.config import AgentConfig
from fleetup.agent.journal import Journal, State
from fleetup.agent.register import ensure_enrolled
from fleetup.agent.runner import Outcome, UpgradeRunner
from fleetup.agent.transport import Transport

MIGRATE = """
import os, pathlib
data = pathlib.Path(os.environ["FLEETUP_DATA_DIRS"].split(os.pathsep)[0])
(data / "schema.txt").write_text("2\\n")
counters = data / "counters.csv"
counters.write_text(counters.read_text().replace("shift,count", "shift,count,unit"))
"""
SELF_TEST_OK = (
    "import pathlib, os; assert pathlib.Path('hooks/migrate.py').exists(); print('all ok')"
)
SELF_TEST_FAIL = "print('conveyor sensor not answering'); raise SystemExit(1)"
STEPS = ["backup", "download", "install", "network", "register", "function_test"]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _setup(
    config: AgentConfig,
    repo: TufRepo,
    server: FakeDeviceServer,
    tmp_path: Path,
    *,
    self_test: str = SELF_TEST_OK,
) -> dict[str, Any]:
    v1 = install.version_dir(config.install_root, "1.0.0")
    v1.mkdir(parents=True)
    (v1 / "manifest.json").write_text(json.dumps({"version": "1.0.0"}))
    (config.install_root / "current").write_text("1.0.0\n")
    package = make_package(
        tmp_path / "ipc-2.0.0.tar.gz",
        version="2.0.0",
        files={"hooks/migrate.py": MIGRATE, "app.txt": "v2"},
        hooks={
            "pre_install": [["{python}", "-c", "open('pre.txt', 'w').write('ok')"]],
            "migrate_data": [["{python}", "hooks/migrate.py"]],
            "self_test": [["{python}", "-c", self_test]],
        },
    )
    repo.add_target("ipc-2.0.0.tar.gz", package)
    repo.publish()
    config.tuf_root.write_bytes(repo.root_bytes())
    action = {
        "id": "act-1",
        "kind": "upgrade",
        "release": {
            "version": "2.0.0",
            "target": "ipc-2.0.0.tar.gz",
            "sha256": hashlib.sha256(package).hexdigest(),
            "length": len(package),
        },
        "install_window": None,
        "network": {"primary_url": server.url, "fallback_url": server.url},
    }
    server.action = action
    return action


def _runner(config: AgentConfig, server: FakeDeviceServer) -> UpgradeRunner:
    transport = Transport(primary_url=server.url, retries=2, backoff_s=0)
    device_id = ensure_enrolled(transport, config)
    return UpgradeRunner(config, transport, device_id=device_id)


def _config(config: AgentConfig, server: FakeDeviceServer, **changes: Any) -> AgentConfig:
    from dataclasses import replace

    return replace(config, primary_url=server.url, **changes)


def test_full_upgrade_v1_to_v2_reports_every_step_in_order_and_keeps_data(
    agent_config: AgentConfig,
    tuf_repo: TufRepo,
    device_server: FakeDeviceServer,
    tmp_path: Path,
) -> None:
    config = _config(agent_config, device_server)
    action = _setup(config, tuf_repo, device_server, tmp_path)
    data = config.data_dirs[0]
    before = _tree(data)

    outcome = _runner(config, device_server).run_action(action)

    assert outcome is Outcome.DONE
    assert install.current_version(config.install_root) == "2.0.0"
    assert install.previous_version(config.install_root) == "1.0.0"
    assert (install.version_dir(config.install_root, "2.0.0") / "pre.txt").exists()
    after = _tree(data)
    assert after["recipes/bread.txt"] == before["recipes/bread.txt"]
    assert after["counters.csv"] == b"shift,count,unit\n1,42\n"
    assert after["schema.txt"] == b"2\n"
    assert device_server.steps() == [(s, st) for s in STEPS for st in ("started", "succeeded")]
    evidence = {(e["step"], e["status"]): e["evidence"] for e in device_server.events}
    assert evidence[("backup", "succeeded")]["verified"] is True
    assert evidence[("download", "succeeded")]["verified_by"] == "tuf"
    assert evidence[("install", "succeeded")]["previous_version"] == "1.0.0"
    assert evidence[("network", "succeeded")]["cloud_link"] == "primary"
    assert "all ok" in evidence[("function_test", "succeeded")]["commands"][0]["output_tail"]
    assert all("duration_s" in evidence[(s, "succeeded")] for s in STEPS)
    (backup_record,) = device_server.backups.values()
    assert backup_record["complete"]
    assert json.loads((config.cloud_settings_file).read_text())["primary_url"] == device_server.url
    assert device_server.registrations == [{"device_id": "dev-1", "platform_hint": "default"}]
    journal = Journal.open(config.journal_file)
    assert journal.state is State.DONE
    assert journal.outbox() == []
    assert not list(config.downloads_dir.iterdir())

    status = cli.render_status(config)
    assert "目前版本：2.0.0" in status and "Current version: 2.0.0 (previous 1.0.0)" in status
    assert "升級完成" in status and "Upgrade state: done" in status

    assert _runner(config, device_server).run_action(action) is Outcome.SKIPPED


def test_self_test_failure_rolls_back_to_the_previous_version_and_data(
    agent_config: AgentConfig,
    tuf_repo: TufRepo,
    device_server: FakeDeviceServer,
    tmp_path: Path,
) -> None:
    config = _config(agent_config, device_server)
    action = _setup(config, tuf_repo, device_server, tmp_path, self_test=SELF_TEST_FAIL)
    before = _tree(config.data_dirs[0])

    outcome = _runner(config, device_server).run_action(action)

    assert outcome is Outcome.FAILED
    assert install.current_version(config.install_root) == "1.0.0"
    assert _tree(config.data_dirs[0]) == before
    assert not config.cloud_settings_file.exists()
    steps = device_server.steps()
    assert steps[-4:] == [
        ("function_test", "started"),
        ("function_test", "failed"),
        ("rollback", "started"),
        ("rollback", "succeeded"),
    ]
    failed = device_server.events[-3]["evidence"]
    assert "conveyor sensor not answering" in failed["output_tail"]
    rollback = device_server.events[-1]["evidence"]
    assert rollback["current"] == "1.0.0"
    assert rollback["data_restored"] == [str(config.data_dirs[0]), str(config.data_dirs[1])]
    assert Journal.open(config.journal_file).state is State.FAILED
    assert "上一步驟：rollback 成功" in cli.render_status(config)


def test_refused_download_changes_nothing(
    agent_config: AgentConfig,
    tuf_repo: TufRepo,
    device_server: FakeDeviceServer,
    tmp_path: Path,
) -> None:
    config = _config(agent_config, device_server)
    action = _setup(config, tuf_repo, device_server, tmp_path)
    target = tuf_repo.targets_dir / f"{action['release']['sha256']}.ipc-2.0.0.tar.gz"
    target.write_bytes(target.read_bytes()[:-10] + b"0123456789")
    before = _tree(config.data_dirs[0])

    assert _runner(config, device_server).run_action(action) is Outcome.FAILED

    assert install.current_version(config.install_root) == "1.0.0"
    assert sorted(p.name for p in (config.install_root / "versions").iterdir()) == ["1.0.0"]
    assert _tree(config.data_dirs[0]) == before
    assert device_server.steps()[-2:] == [("download", "started"), ("download", "failed")]
    assert device_server.events[-1]["evidence"]["refused_reason"] == "tampered"


class _PowerCut(BaseException):
    pass


def test_crash_mid_upgrade_resumes_from_the_journal_without_redoing_finished_steps(
    agent_config: AgentConfig,
    tuf_repo: TufRepo,
    device_server: FakeDeviceServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _config(agent_config, device_server)
    action = _setup(config, tuf_repo, device_server, tmp_path)

    def power_cut(self: UpgradeRunner) -> State:
        raise _PowerCut

    with monkeypatch.context() as patch:
        patch.setattr(UpgradeRunner, "_network", power_cut)
        with pytest.raises(_PowerCut):
            _runner(config, device_server).run_action(action)
    assert Journal.open(config.journal_file).state is State.NETWORK
    served = device_server.target_bytes_served

    assert _runner(config, device_server).resume() is Outcome.DONE

    assert install.current_version(config.install_root) == "2.0.0"
    assert len(device_server.backups) == 1
    assert device_server.target_bytes_served == served
    steps = device_server.steps()
    assert steps.count(("backup", "started")) == 1
    assert steps.count(("install", "succeeded")) == 1
    assert steps[-6:] == [(s, st) for s in STEPS[3:] for st in ("started", "succeeded")]
    attempts = [e["evidence"]["attempt"] for e in device_server.events if e["step"] == "network"]
    assert attempts == [2, 2]


def test_state_loop_cap_fails_the_action_and_rolls_back(
    agent_config: AgentConfig,
    tuf_repo: TufRepo,
    device_server: FakeDeviceServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _config(agent_config, device_server, state_loop_cap=1)
    action = _setup(config, tuf_repo, device_server, tmp_path)

    with monkeypatch.context() as patch:
        patch.setattr(UpgradeRunner, "_network", lambda self: (_ for _ in ()).throw(_PowerCut()))
        with pytest.raises(_PowerCut):
            _runner(config, device_server).run_action(action)

    assert _runner(config, device_server).resume() is Outcome.FAILED
    assert install.current_version(config.install_root) == "1.0.0"
    assert device_server.steps()[-4:] == [
        ("network", "started"),
        ("network", "failed"),
        ("rollback", "started"),
        ("rollback", "succeeded"),
    ]
    assert "StateLoopError" in device_server.events[-3]["evidence"]["error_kind"]


def test_install_window_not_yet_open_waits_without_touching_anything(
    agent_config: AgentConfig,
    tuf_repo: TufRepo,
    device_server: FakeDeviceServer,
    tmp_path: Path,
) -> None:
    config = _config(agent_config, device_server)
    action = _setup(config, tuf_repo, device_server, tmp_path)
    action["install_window"] = {"not_before": "2999-01-01T00:00:00Z", "not_after": None}
    assert _runner(config, device_server).run_action(action) is Outcome.WAITING
    assert device_server.events == []
    assert not Journal.open(config.journal_file).active


def test_polling_uses_etag_and_304(
    agent_config: AgentConfig,
    tuf_repo: TufRepo,
    device_server: FakeDeviceServer,
    tmp_path: Path,
) -> None:
    config = _config(agent_config, device_server)
    _setup(config, tuf_repo, device_server, tmp_path)
    transport = Transport(primary_url=device_server.url, credential=device_server.credential)
    etag, action, changed = poll_next_action(transport, None)
    assert changed and action is not None and action["id"] == "act-1" and etag
    assert poll_next_action(transport, etag) == (etag, None, False)


def test_cli_once_enrolls_heartbeats_and_upgrades(
    agent_config: AgentConfig,
    tuf_repo: TufRepo,
    device_server: FakeDeviceServer,
    tmp_path: Path,
) -> None:
    config = _config(agent_config, device_server)
    _setup(config, tuf_repo, device_server, tmp_path)
    toml = tmp_path / "agent.toml"
    toml.write_text(
        f"""
[server]
primary_url = "{device_server.url}"
retries = 2
backoff_s = 0
[device]
serial = "IPC-0001"
enrollment_token = "token-1"
[paths]
data_dirs = {json.dumps([str(d) for d in config.data_dirs])}
install_root = "{config.install_root}"
work_dir = "{config.work_dir}"
tuf_root = "{config.tuf_root}"
"""
    )
    assert cli.main(["once", "--config", str(toml)]) == 0
    assert install.current_version(config.install_root) == "2.0.0"
    assert device_server.heartbeats[0]["version"] == "1.0.0"
    assert device_server.heartbeats[0]["link"] == "primary"
    assert json.loads(config.credential_file.read_text())["device_id"] == "dev-1"
    assert cli.main(["once", "--config", str(toml)]) == 0  # nothing new: a no-op
    assert len(device_server.steps()) == 12
