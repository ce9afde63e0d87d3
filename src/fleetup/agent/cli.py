"""``fleetup-agent``: the command the IPC runs (``run``), and the one a technician types.

``run`` enrolls if needed, then loops: send waiting reports, resume an unfinished upgrade or
poll for the next action (with ETag), run it, and heartbeat in the background every
``agent.heartbeat_interval_s``. Between polls it waits ``agent.poll_interval_s``, or less when
an MQTT wake-up arrives (``agent.mqtt_url``, see ``wake.py``). ``once`` does one poll-and-run
(and one heartbeat) and exits.
``status`` reads only local files and prints, in Traditional Chinese and in English, what the
person on site needs: version, upgrade state, last step and its result, link, last heartbeat.

Exit codes: 0 fine, 1 the upgrade failed or the server refused, 2 bad configuration,
3 paused or waiting (try again later).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleetup.agent import config as agent_config
from fleetup.agent import install
from fleetup.agent._internal.actions import poll_next_action
from fleetup.agent._internal.files import read_json
from fleetup.agent.config import AgentConfig
from fleetup.agent.errors import AgentError, ConfigError, NotEnrolled, ServerError
from fleetup.agent.heartbeat import HeartbeatThread, send_heartbeat
from fleetup.agent.journal import Journal
from fleetup.agent.register import ensure_enrolled, load_credential
from fleetup.agent.runner import Outcome, UpgradeRunner
from fleetup.agent.transport import Transport
from fleetup.agent.wake import PollPacer

log = logging.getLogger("fleetup.agent")

STATE_ZH = {
    "idle": "閒置",
    "backup": "資料備份中",
    "backup_uploaded": "備份已上傳",
    "download": "下載程式中",
    "downloaded": "程式已下載",
    "install": "安裝中",
    "installed": "已安裝",
    "network": "網路設定中",
    "register": "雲端註冊中",
    "function_test": "功能測試中",
    "commit": "確認中",
    "done": "升級完成",
    "rollback": "回復舊版中",
    "failed": "升級失敗",
    "diagnose": "網路診斷中",
    "switch_network": "切換備援線路中",
    "snapshot": "快照備份中",
    "restore": "系統還原中",
}
STATUS_ZH = {"started": "開始", "succeeded": "成功", "failed": "失敗"}
LINK_ZH = {"primary": "主線路", "fallback": "備援線路 (4G)", "4g": "備援線路 (4G)"}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fleetup-agent`` console script.

    Returns:
        The exit code (see the module docstring).
    """
    parser = argparse.ArgumentParser(
        prog="fleetup-agent", description="fleetup IPC agent: upgrade, backup, heartbeat, status"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "keep running: poll, upgrade, heartbeat"),
        ("once", "poll once, run what came, exit"),
        ("status", "show the upgrade state (中文 / English)"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--config", type=Path, required=True, help="the agent's TOML file")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = agent_config.load(args.config)
        if args.command == "status":
            print(render_status(config))
            return 0
        if args.command == "once":
            return _exit_code(run_once(config))
        run_forever(config)
        return 0
    except ConfigError as e:
        print(f"設定錯誤 Configuration error: {e}", file=sys.stderr)
        return 2
    except NotEnrolled as e:
        print(f"裝置未註冊 Device not enrolled: {e}", file=sys.stderr)
        return 1
    except AgentError as e:
        print(f"錯誤 Error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


class AgentSession:
    """The pieces one agent process works with, opened from its configuration."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        config.work_dir.mkdir(parents=True, exist_ok=True)
        self.transport = self._transport()
        device_id = ensure_enrolled(self.transport, config)
        self.runner = UpgradeRunner(config, self.transport, device_id=device_id)
        self.etag: str | None = None

    def _transport(self) -> Transport:
        config = self.config
        return Transport(
            primary_url=config.primary_url,
            fallback_url=config.fallback_url,
            timeout_s=config.timeout_s,
            retries=config.retries,
            backoff_s=config.backoff_s,
            verify_tls=config.verify_tls,
        )

    def heartbeat(self, transport: Transport | None = None) -> dict[str, Any]:
        """Send one heartbeat."""
        return send_heartbeat(
            transport or self.transport,
            version=install.current_version(self.config.install_root),
            work_dir=self.config.work_dir,
            state_file=self.config.heartbeat_file,
        )

    def cycle(self) -> Outcome | None:
        """Send reports, then resume the journal's action or poll for a new one."""
        runner = self.runner
        runner.flush_reports()
        if runner.journal.active:
            return runner.resume()
        etag, action, _ = poll_next_action(self.transport, self.etag)
        self.etag = etag
        if action is None:
            return None
        outcome = runner.run_action(action)
        if outcome is Outcome.WAITING:
            self.etag = None  # a 304 would hide the action once its window opens
        return outcome

    def close(self) -> None:
        """Close connections."""
        self.transport.close()


def run_once(config: AgentConfig) -> Outcome | None:
    """One heartbeat, one poll, and the action that came (if any), to its end or a pause."""
    session = AgentSession(config)
    try:
        session.heartbeat()
        return session.cycle()
    finally:
        session.close()


def run_forever(config: AgentConfig) -> None:
    """The service loop; ends only on Ctrl-C or when the process is stopped."""
    session = AgentSession(config)
    beat_transport = session._transport()
    beat_transport.credential = session.transport.credential
    beats = HeartbeatThread(lambda: session.heartbeat(beat_transport), config.heartbeat_interval_s)
    beats.start()
    pacer = PollPacer(config.mqtt_url, config.cloud_settings_file, session.runner.device_id)
    try:
        while True:
            try:
                outcome = session.cycle()
                if outcome is not None:
                    log.info("action ended: %s", outcome)
            except NotEnrolled:
                raise
            except ServerError as e:
                log.warning("server not reachable now: %s", e)
            except AgentError as e:
                log.error("agent error: %s", e)
            if pacer.wait(config.poll_interval_s):
                log.info("woken up by the server: polling now")
    finally:
        pacer.close()
        beats.stop()
        session.close()
        beat_transport.close()


def render_status(config: AgentConfig) -> str:
    """The ``status`` text: a Traditional Chinese block, then the same in English."""
    journal = Journal.open(config.journal_file, cap=config.state_loop_cap).snapshot()
    credential = load_credential(config.credential_file)
    beat = read_json(config.heartbeat_file) if config.heartbeat_file.exists() else None
    current = install.current_version(config.install_root) or "-"
    previous = install.previous_version(config.install_root) or "-"
    action = journal.get("action") or {}
    release = (action.get("release") or {}).get("version", "-")
    state = journal["state"]
    last = journal.get("last_step")
    link = (beat or {}).get("link") or "-"
    device = credential["device_id"] if credential else None
    waiting = len(journal.get("outbox", []))

    def last_step(zh: bool) -> str:
        if not last:
            return "-" if not zh else "無"
        status = STATUS_ZH.get(last["status"], last["status"]) if zh else last["status"]
        text = f"{last['step']} {status} @ {last['at']}"
        if last.get("duration_s") is not None:
            text += f" ({last['duration_s']} s)"
        if last.get("error"):
            text += f" — {last['error']}"
        return text

    def heartbeat(zh: bool) -> str:
        if not beat:
            return "尚無" if zh else "none yet"
        ok = ("正常" if zh else "ok") if beat.get("ok") else ("失敗" if zh else "failed")
        return f"{beat.get('at')} {ok}" + (f" — {beat['error']}" if beat.get("error") else "")

    lines = [
        "== fleetup-agent 狀態 ==",
        f"裝置編號：{device or '尚未註冊'}（序號 {config.serial}）",
        f"目前版本：{current}（前一版本 {previous}）",
        f"升級狀態：{STATE_ZH.get(state, state)}"
        f"（工作 {action.get('id', '-')}，目標版本 {release}）",
        f"上一步驟：{last_step(True)}",
        f"使用線路：{LINK_ZH.get(link, link)}",
        f"最後心跳：{heartbeat(True)}",
        f"待送報告：{waiting} 筆",
        "",
        "== fleetup-agent status ==",
        f"Device: {device or 'not enrolled yet'} (serial {config.serial})",
        f"Current version: {current} (previous {previous})",
        f"Upgrade state: {state} (action {action.get('id', '-')}, target version {release})",
        f"Last step: {last_step(False)}",
        f"Link in use: {link}",
        f"Last heartbeat: {heartbeat(False)}",
        f"Reports waiting: {waiting}",
    ]
    return "\n".join(lines)


def _exit_code(outcome: Outcome | None) -> int:
    if outcome is Outcome.FAILED:
        return 1
    if outcome in (Outcome.PAUSED, Outcome.WAITING):
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
