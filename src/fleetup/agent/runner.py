"""Running one action (an upgrade, a reinstall, or a remote action) through the journal's
states, reporting every step.

:class:`UpgradeRunner` is the agent's state machine driver. For each state it enters the
state in the journal (saved), runs the step, and moves on; each step is reported to the server
as ``started`` then ``succeeded`` or ``failed`` with ``at``, ``duration_s``, the SOP budget and
evidence (sizes, hashes, link used, versions, test output tail). Reports go through the
journal's outbox, so a report is never lost and a resent one keeps its event id.

Rules the steps keep:

* nothing on the machine changes before the backup is archived, read back and verified;
* every step checks what is already done before acting, so a re-run after a crash is safe;
* a transient failure (server or download cut) pauses the action; the next run resumes the
  same state, and the journal's loop cap turns endless retries into a failure;
* any other failure after something changed rolls back: ``current`` points at the previous
  version again, the connection settings are put back, and the data folders are restored
  from the backup if ``migrate_data`` ran.

A ``reinstall`` is an upgrade to the version already installed: its package is unpacked
afresh over the version folder and ``previous`` is left alone. The remote kinds (``diagnose``,
``fallback``, ``snapshot``, ``restore``) are one state each; their steps live in
``remote_actions.py``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx

from fleetup.agent import backup, install
from fleetup.agent._internal.actions import (
    action_problem,
    command_evidence,
    failure_evidence,
    read_package_json,
    window_position,
)
from fleetup.agent._internal.clock import Clock, SystemClock, iso
from fleetup.agent._internal.files import atomic_write_bytes
from fleetup.agent.config import AgentConfig
from fleetup.agent.download import download_release
from fleetup.agent.errors import (
    AgentError,
    BackupCorrupt,
    NotEnrolled,
    PackageRejected,
    ServerError,
    ServerRejected,
    StateLoopError,
)
from fleetup.agent.journal import Journal, State
from fleetup.agent.network import (
    apply_link_state,
    check_links,
    settings_from_action,
    write_settings,
)
from fleetup.agent.register import platform_credential_file, register_platform
from fleetup.agent.remote_actions import REMOTE_STATE, RemoteActions
from fleetup.agent.selftest import run_self_test
from fleetup.agent.transport import Transport

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    """How a call to the runner ended."""

    DONE = "done"  # the upgrade committed
    FAILED = "failed"  # the upgrade failed (rolled back if anything had changed)
    PAUSED = "paused"  # a transient failure; call again later to resume
    WAITING = "waiting"  # the install window has not opened yet
    SKIPPED = "skipped"  # already finished, outside its window, or of an unknown kind


#: Action kinds that run the upgrade's states.
UPGRADE_KINDS = frozenset({"upgrade", "reinstall"})


#: The event step each working state reports as.
STEP_OF: dict[State, str] = {
    State.BACKUP: "backup",
    State.DOWNLOAD: "download",
    State.INSTALL: "install",
    State.NETWORK: "network",
    State.REGISTER: "register",
    State.FUNCTION_TEST: "function_test",
    State.ROLLBACK: "rollback",
    State.DIAGNOSE: "diagnose",
    State.SWITCH_NETWORK: "switch_network",
    State.SNAPSHOT: "snapshot",
    State.RESTORE: "restore",
}

#: SOP chart 3 budgets (seconds); download and install share "program update".
BUDGET_S: dict[str, int] = {
    "backup": 600,
    "download": 900,
    "install": 900,
    "network": 600,
    "register": 300,
    "function_test": 900,
    "rollback": 900,
    "diagnose": 300,
    "switch_network": 300,
    "snapshot": 600,
    "restore": 1800,
}


class UpgradeRunner:
    """Drives upgrade actions through the journal.

    Args:
        config: the agent's configuration.
        transport: the server seam.
        device_id: the enrolled device id.
        journal: the journal (default: opened from ``config.journal_file``).
        clock: time source.
        http: httpx transport for the new platform's link test (tests pass a mock).
    """

    def __init__(
        self,
        config: AgentConfig,
        transport: Transport,
        *,
        device_id: str,
        journal: Journal | None = None,
        clock: Clock | None = None,
        http: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.transport = transport
        self.device_id = device_id
        self.journal = journal or Journal.open(config.journal_file, cap=config.state_loop_cap)
        self.clock = clock or SystemClock()
        self.http = http
        self._handlers: dict[State, Callable[[], State]] = {
            State.BACKUP: self._backup,
            State.BACKUP_UPLOADED: lambda: State.DOWNLOAD,
            State.DOWNLOAD: self._download,
            State.DOWNLOADED: lambda: State.INSTALL,
            State.INSTALL: self._install,
            State.INSTALLED: lambda: State.NETWORK,
            State.NETWORK: self._network,
            State.REGISTER: self._register,
            State.FUNCTION_TEST: self._function_test,
            State.COMMIT: self._commit,
            State.ROLLBACK: self._rollback,
            **RemoteActions(self).handlers(),
        }
        # A link the server moved to 4G stays moved across restarts.
        apply_link_state(self.transport, config.work_dir)

    def run_action(self, action: dict[str, Any]) -> Outcome:
        """Run ``action`` from the start, or resume the action already in the journal.

        Returns:
            How the run ended.

        Raises:
            JournalError: the journal cannot be written.
        """
        if self.journal.active:
            return self.resume() or Outcome.SKIPPED
        action_id = str(action.get("id", ""))
        if not action_id or self.journal.is_finished(action_id):
            return Outcome.SKIPPED
        kind = action.get("kind")
        if kind in REMOTE_STATE:
            self.journal.begin(action)
            return self._drive(REMOTE_STATE[str(kind)])
        if kind not in UPGRADE_KINDS:
            log.warning("ignoring action %s of kind %r", action_id, kind)
            return Outcome.SKIPPED
        window = window_position(action.get("install_window"), self.clock)
        if window != "open":
            log.info("action %s: install window %s", action_id, window)
            return Outcome.WAITING if window == "not_yet" else Outcome.SKIPPED
        self.journal.begin(action)
        problem = action_problem(action)
        if problem:
            self.journal.enter(State.BACKUP)
            with contextlib.suppress(PackageRejected), self.step(State.BACKUP):
                raise PackageRejected(f"the action is incomplete: {problem}")
            self.journal.enter(State.FAILED)
            self.flush_reports()
            return Outcome.FAILED
        return self._drive(State.BACKUP)

    def resume(self) -> Outcome | None:
        """Continue the action in the journal after a restart; ``None`` when there is none."""
        if not self.journal.active:
            return None
        return self._drive(self.journal.state)

    def flush_reports(self) -> int:
        """Send the outbox's reports in order; stop at the first that cannot be sent.

        Returns:
            How many reports are still waiting.
        """
        for item in self.journal.outbox():
            event = item["event"]
            try:
                self.transport.post_json(f"/device/v1/actions/{item['action_id']}/events", event)
            except NotEnrolled:
                raise
            except ServerRejected as e:
                # The server will never take this report (e.g. 404, 422): keep the others moving.
                log.error("server refused report %s: %s", event["event_id"], e)
            except ServerError as e:
                log.info("reports wait for the server: %s", e)
                break
            self.journal.event_sent(event["event_id"])
        return len(self.journal.outbox())

    # The state machine.

    def _drive(self, state: State) -> Outcome:
        while state not in (State.DONE, State.FAILED):
            try:
                self.journal.enter(state)
            except StateLoopError as e:
                if state in STEP_OF:
                    with contextlib.suppress(StateLoopError), self.step(state):
                        raise e
                state = State.FAILED if state is State.ROLLBACK else self._after_failure()
                continue
            try:
                state = self._handlers[state]()
            except AgentError as e:
                if e.transient:
                    self.flush_reports()
                    return Outcome.PAUSED
                state = State.FAILED if state is State.ROLLBACK else self._after_failure()
            except Exception:  # a bug or an OS error must not leave the machine half-changed
                log.exception("step %s crashed", state)
                state = State.FAILED if state is State.ROLLBACK else self._after_failure()
        self.journal.enter(state)
        self.flush_reports()
        return Outcome.DONE if state is State.DONE else Outcome.FAILED

    def _after_failure(self) -> State:
        facts = self.journal.facts
        if facts.get("changed") and not facts.get("rolled_back"):
            return State.ROLLBACK
        return State.FAILED

    @contextlib.contextmanager
    def step(self, state: State) -> Iterator[dict[str, Any]]:
        """Report ``state``'s step as started, then succeeded or failed with the evidence the
        body put in the yielded dict (plus duration and budget)."""
        step = STEP_OF[state]
        self._report(state, "started", {})
        started = self.clock.monotonic()
        evidence: dict[str, Any] = {}
        try:
            yield evidence
        except Exception as e:
            evidence.update(failure_evidence(e))
            evidence.update(duration_s=self._since(started), budget_s=BUDGET_S[step])
            self._report(state, "failed", evidence)
            raise
        evidence.update(duration_s=self._since(started), budget_s=BUDGET_S[step])
        evidence["over_budget"] = evidence["duration_s"] > BUDGET_S[step]
        self._report(state, "succeeded", evidence)

    def _report(self, state: State, status: str, evidence: dict[str, Any]) -> None:
        step = STEP_OF[state]
        action_id = self.journal.action_id
        assert action_id is not None
        attempt = self.journal.entries(state)
        event = {
            "event_id": self.journal.event_id(f"{step}:{status}:{attempt}"),
            "step": step,
            "status": status,
            "at": iso(self.clock.now()),
            "evidence": {"attempt": attempt, "link": self.transport.link, **evidence},
        }
        self.journal.queue_event(action_id, event)
        self.flush_reports()

    def _since(self, started: float) -> float:
        return round(self.clock.monotonic() - started, 3)

    # The steps. Each checks the journal's facts first, so it can run twice.

    def _backup(self) -> State:
        with self.step(State.BACKUP) as evidence:
            self.archive_and_upload(evidence)
        return State.BACKUP_UPLOADED

    def archive_and_upload(self, evidence: dict[str, Any]) -> None:
        """Archive the data folders, read the archive back, upload it; fill ``evidence``.

        Each part checks the journal first (a verified archive is reused after its hash is
        checked again; an upload resumes by ``backup_id``), so it can run twice.
        """
        config, journal = self.config, self.journal
        facts = journal.facts
        if facts.get("backup_verified") and Path(facts["backup_archive"]).exists():
            archive = backup.load(Path(facts["backup_archive"]))
            if archive.sha256 != facts["backup_sha256"]:
                raise BackupCorrupt(f"{archive.path.name} changed since it was verified")
            files = facts["backup_files"]
        else:
            name = f"{_safe(journal.action_id or 'action')}-{_stamp(self.clock)}.tar.zst"
            archive = backup.create(config.data_dirs, config.backups_dir / name)
            journal.note(backup_archive=str(archive.path))
            files = backup.verify(archive.path, archive.manifest)
            journal.note(backup_verified=True, backup_sha256=archive.sha256, backup_files=files)
        evidence.update(
            archive=archive.path.name,
            sha256=archive.sha256,
            size=archive.size,
            files=files,
            data_bytes=archive.manifest.get("total_bytes"),
            verified=True,
        )
        if not journal.facts.get("backup_uploaded"):
            result = backup.upload(
                self.transport,
                archive,
                action_id=str(journal.action_id),
                chunk_bytes=config.upload_chunk_bytes,
                backup_id=journal.facts.get("backup_id"),
                on_backup_id=lambda backup_id: journal.note(backup_id=backup_id),
            )
            journal.note(backup_uploaded=True, backup_id=result.backup_id)
            evidence.update(bytes_sent=result.bytes_sent, resumed_from=result.resumed_from)
        evidence["backup_id"] = journal.facts.get("backup_id")

    def _download(self) -> State:
        release = self._release()
        with self.step(State.DOWNLOAD) as evidence:
            result = download_release(
                self.transport,
                release,
                trusted_root=self.config.tuf_root,
                metadata_dir=self.config.metadata_dir,
                downloads_dir=self.config.downloads_dir,
            )
            self.journal.note(package=str(result.path))
            evidence.update(
                version=release["version"],
                target=result.target,
                sha256=result.sha256,
                length=result.length,
                bytes_received=result.bytes_received,
                verified_by="tuf",
            )
        return State.DOWNLOADED

    def _install(self) -> State:
        root, journal, version = self.config.install_root, self.journal, self._release()["version"]
        with self.step(State.INSTALL) as evidence:
            package = Path(journal.facts["package"])
            manifest = install.read_manifest(package)
            if manifest.version != version:
                raise PackageRejected(f"package says version {manifest.version}, not {version}")
            install.check_fits(manifest, model=self.config.model)
            if "previous_version" not in journal.facts:
                journal.note(previous_version=install.current_version(root))
            previous = journal.facts["previous_version"]
            fresh = self._is_reinstall() and not journal.facts.get("unpacked_fresh")
            folder = install.unpack(package, root, version, fresh=fresh)
            if fresh:
                journal.note(unpacked_fresh=True)
            env = self._env(version)
            hooks: dict[str, list[dict[str, Any]]] = {}
            for phase, done_fact in (
                ("pre_install", "pre_install_done"),
                ("migrate_data", "migrate_done"),
            ):
                if journal.facts.get(done_fact) or not manifest.commands(phase):
                    continue
                journal.note(
                    changed=True, **({"migrate_started": True} if phase == "migrate_data" else {})
                )
                results = install.run_hooks(
                    phase, manifest, cwd=folder, env=env, timeout_s=self.config.hook_timeout_s
                )
                hooks[phase] = [command_evidence(result) for result in results]
                journal.note(**{done_fact: True})
            journal.note(changed=True)
            install.switch(root, version)
            evidence.update(
                version=version,
                previous_version=previous,
                current=install.current_version(root),
                package_sha256=self._release()["sha256"],
                hooks=hooks,
            )
        return State.INSTALLED

    def _network(self) -> State:
        path = self.config.cloud_settings_file
        with self.step(State.NETWORK) as evidence:
            settings = settings_from_action(self._action()["network"], device_id=self.device_id)
            if "settings_saved_as" not in self.journal.facts:
                saved = (
                    self.config.work_dir
                    / f"cloud-settings.before-{_safe(str(self.journal.action_id))}"
                )
                if path.exists():
                    atomic_write_bytes(saved, path.read_bytes())
                self.journal.note(settings_saved_as=str(saved) if path.exists() else None)
            written = write_settings(path, settings)
            check = check_links(settings, http=self.http, sleep=self.clock.sleep)
            self.journal.note(cloud_link=check.link)
            evidence.update(
                settings_file=str(path),
                written=written,
                cloud_link=check.link,
                cloud_url=check.url,
                tried=check.tried,
            )
        return State.REGISTER

    def _register(self) -> State:
        hint = str(self._action().get("platform_hint") or "default")
        with self.step(State.REGISTER) as evidence:
            evidence.update(
                register_platform(
                    self.transport,
                    device_id=self.device_id,
                    platform_hint=hint,
                    credential_file=platform_credential_file(self.config),
                ),
                platform_hint=hint,
            )
        return State.FUNCTION_TEST

    def _function_test(self) -> State:
        version = self._release()["version"]
        folder = install.version_dir(self.config.install_root, version)
        with self.step(State.FUNCTION_TEST) as evidence:
            manifest = install.parse_manifest(read_package_json(folder / install.MANIFEST))
            evidence.update(
                run_self_test(
                    manifest,
                    cwd=folder,
                    env=self._env(version),
                    timeout_s=self.config.self_test_timeout_s,
                ),
                version=version,
            )
        return State.COMMIT

    def _commit(self) -> State:
        root = self.config.install_root
        keep = {install.current_version(root), install.previous_version(root)}
        versions = root / "versions"
        for folder in versions.iterdir() if versions.is_dir() else []:
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)
        package = self.journal.facts.get("package")
        if package:
            Path(package).unlink(missing_ok=True)
        self.journal.note(committed=True)
        return State.DONE

    def _rollback(self) -> State:
        facts, root = self.journal.facts, self.config.install_root
        with self.step(State.ROLLBACK) as evidence:
            failed_version = install.current_version(root)
            restored_to = install.roll_back(root, to=facts.get("previous_version"))
            saved = facts.get("settings_saved_as")
            settings = self.config.cloud_settings_file
            if "settings_saved_as" in facts:
                if saved:
                    atomic_write_bytes(settings, Path(saved).read_bytes())
                else:
                    settings.unlink(missing_ok=True)
            restored_dirs: list[str] = []
            if facts.get("migrate_started") and not facts.get("data_restored"):
                archive = Path(facts["backup_archive"])
                restored = backup.restore_in_place(archive, _stamp(self.clock))
                restored_dirs = [str(path) for path in restored]
                self.journal.note(data_restored=True)
            self.journal.note(rolled_back=True)
            evidence.update(
                from_version=failed_version,
                current=restored_to,
                data_restored=restored_dirs,
                settings_restored="settings_saved_as" in facts,
            )
        return State.FAILED

    # Helpers.

    def _action(self) -> dict[str, Any]:
        action = self.journal.action
        assert action is not None
        return action

    def _is_reinstall(self) -> bool:
        action = self._action()
        params = action.get("params")
        return action.get("kind") == "reinstall" or (
            isinstance(params, dict) and bool(params.get("reinstall"))
        )

    def _release(self) -> dict[str, Any]:
        release: dict[str, Any] = self._action()["release"]
        return release

    def _env(self, version: str) -> dict[str, str]:
        return install.hook_env(
            install_root=self.config.install_root,
            version=version,
            previous=self.journal.facts.get("previous_version"),
            data_dirs=list(self.config.data_dirs),
            work_dir=self.config.work_dir,
            backup_archive=self.journal.facts.get("backup_archive"),
        )


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:64]


def _stamp(clock: Clock) -> str:
    return clock.now().strftime("%Y%m%dT%H%M%SZ")
