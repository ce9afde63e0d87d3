"""The remote actions an operator sends to one IPC: diagnose, 4G fallback, snapshot, restore.

Each is one journal state (``diagnose``, ``switch_network``, ``snapshot``, ``restore``)
reported as one step of the same name, then ``done`` (or ``failed``). They run through the
:class:`~fleetup.agent.runner.UpgradeRunner`'s state machine, so they share its journal,
outbox, event ids and loop cap, and a crash in the middle resumes the same state.

* ``diagnose``: DNS, route and ``GET /healthz`` for the primary and the fallback URL; the
  action succeeds with whatever it found (the evidence is the answer).
* ``fallback``: checks the 4G URL answers, then pins the agent's transport to it and keeps
  that in ``work_dir/link.json``; heartbeats report ``link: "4g"`` from then on.
* ``snapshot``: the upgrade's backup (archive, read back, upload), on demand.
* ``restore``: downloads the named backup from ``/device/v1/blobs/<sha256>`` (resuming a cut
  download), checks its sha256 and its manifest against what the server named, and only then
  puts the data folders back (each unpacked beside itself and swapped in, the old content
  kept as ``<folder>.before-restore-<stamp>``); with ``program: "previous"`` it also points
  ``current`` back at the kept ``previous`` version. Each part notes its fact in the journal,
  so a re-run after a power cut does not repeat a finished part.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from fleetup.agent import backup, install
from fleetup.agent._internal.files import (
    atomic_write_json,
    atomic_write_text,
    fsync_dir,
    read_json,
)
from fleetup.agent.errors import BackupCorrupt, BackupError, NetworkCheckFailed, ServerUnreachable
from fleetup.agent.journal import State
from fleetup.agent.network import diagnose_url, save_link_state

if TYPE_CHECKING:
    from fleetup.agent.runner import UpgradeRunner

#: The journal state each remote action kind runs in.
REMOTE_STATE: dict[str, State] = {
    "diagnose": State.DIAGNOSE,
    "fallback": State.SWITCH_NETWORK,
    "snapshot": State.SNAPSHOT,
    "restore": State.RESTORE,
}
_SHA256 = re.compile(r"[0-9a-f]{64}")


class RemoteActions:
    """The step handlers of the remote kinds, bound to one runner."""

    def __init__(self, runner: UpgradeRunner) -> None:
        self.runner = runner

    def handlers(self) -> dict[State, Any]:
        """The runner's handler for each remote state."""
        return {
            State.DIAGNOSE: self.diagnose,
            State.SWITCH_NETWORK: self.switch_network,
            State.SNAPSHOT: self.snapshot,
            State.RESTORE: self.restore,
        }

    def _params(self) -> dict[str, Any]:
        action = self.runner.journal.action or {}
        params = action.get("params")
        return params if isinstance(params, dict) else {}

    def _urls(self) -> list[tuple[str, str]]:
        urls = self.runner.transport.urls
        config = self.runner.config
        found = [("primary", urls.get("primary") or config.primary_url)]
        fallback = self._fallback_url()
        if fallback:
            found.append(("fallback", fallback))
        return found

    def _fallback_url(self) -> str | None:
        params = self._params()
        candidates = [
            params.get("fallback_url"),
            self.runner.transport.urls.get("fallback"),
            self.runner.config.fallback_url,
        ]
        settings = read_json(self.runner.config.cloud_settings_file)
        if isinstance(settings, dict):
            candidates.append(settings.get("fallback_url"))
        for url in candidates:
            if isinstance(url, str) and url.startswith(("http://", "https://")):
                return url.rstrip("/")
        return None

    # The steps.

    def diagnose(self) -> State:
        runner = self.runner
        with runner.step(State.DIAGNOSE) as evidence:
            checks = [diagnose_url(link, url, http=runner.http) for link, url in self._urls()]
            evidence.update(
                checks=checks,
                link_in_use=runner.transport.link,
                reachable=[c["link"] for c in checks if c["reachable"]["ok"]],
            )
        return State.DONE

    def switch_network(self) -> State:
        runner = self.runner
        with runner.step(State.SWITCH_NETWORK) as evidence:
            url = self._fallback_url()
            if url is None:
                raise NetworkCheckFailed("no 4G fallback URL is configured on this IPC")
            check = diagnose_url("fallback", url, http=runner.http)
            if not check["reachable"]["ok"]:
                raise NetworkCheckFailed(f"the 4G fallback {url} does not answer: {check}")
            previous_link = runner.transport.link
            runner.transport.pin_fallback(url)
            save_link_state(runner.config.work_dir, link="4g", url=url)
            evidence.update(
                link="4g", url=url, previous_link=previous_link, check=check["reachable"]
            )
        return State.DONE

    def snapshot(self) -> State:
        runner = self.runner
        with runner.step(State.SNAPSHOT) as evidence:
            runner.archive_and_upload(evidence)
            evidence["reason"] = self._params().get("reason", "")
        return State.DONE

    def restore(self) -> State:
        runner, journal = self.runner, self.runner.journal
        config = runner.config
        with runner.step(State.RESTORE) as evidence:
            params = self._params()
            named = params.get("backup")
            if not isinstance(named, dict) or not _SHA256.fullmatch(str(named.get("sha256"))):
                raise BackupError("the restore action names no backup sha256")
            sha256, size = str(named["sha256"]), int(named.get("size") or 0)
            program = params.get("program", "previous")
            if "restore_stamp" not in journal.facts:
                journal.note(
                    restore_stamp=runner.clock.now().strftime("%Y%m%dT%H%M%SZ"),
                    restore_from_version=install.current_version(config.install_root),
                    restore_to_version=install.previous_version(config.install_root),
                )
            facts = journal.facts
            if program == "previous" and not facts.get("restore_to_version"):
                raise BackupError("no previous version is kept on this IPC to go back to")
            archive = config.backups_dir / f"restore-{sha256[:16]}.tar.zst"
            received = fetch_blob(runner.transport, sha256=sha256, size=size, dest=archive)
            manifest = backup.read_manifest(archive)
            expected = named.get("manifest")
            if isinstance(expected, dict) and expected and expected != manifest:
                raise BackupCorrupt("the backup's manifest is not the one the server named")
            files = backup.verify(archive, manifest)
            if not facts.get("data_restored"):
                restored = backup.restore_to_dirs(
                    archive, config.data_dirs, str(facts["restore_stamp"])
                )
                # The restored state is the new baseline of the data-anomaly check.
                atomic_write_json(backup.manifest_path_for(archive), manifest)
                journal.note(data_restored=[str(path) for path in restored])
            if program == "previous" and not journal.facts.get("program_restored"):
                _back_to_previous(
                    config.install_root,
                    to=str(facts["restore_to_version"]),
                    leaving=facts.get("restore_from_version"),
                )
                journal.note(program_restored=True)
            evidence.update(
                backup_id=named.get("backup_id"),
                sha256=sha256,
                size=size,
                files=files,
                bytes_received=received,
                verified=True,
                data_restored=journal.facts.get("data_restored"),
                kept_aside=[
                    f"{path}.before-restore-{facts['restore_stamp']}"
                    for path in journal.facts.get("data_restored") or []
                ],
                program=program,
                from_version=facts.get("restore_from_version"),
                current=install.current_version(config.install_root),
                spare=bool(params.get("spare")),
                reason=params.get("reason", ""),
            )
        return State.DONE


def _back_to_previous(install_root: Path, *, to: str, leaving: str | None) -> None:
    """``current`` → ``to``; ``previous`` names the version left, so the step can be undone."""
    if not install.version_dir(install_root, to).is_dir():
        raise BackupError(f"the previous version {to} is no longer on this IPC")
    install.roll_back(install_root, to=to)
    if leaving and leaving != to and install.previous_version(install_root) != leaving:
        atomic_write_text(install_root / "previous", leaving + "\n")


def fetch_blob(transport: Any, *, sha256: str, size: int, dest: Path) -> int:
    """Download blob ``sha256`` to ``dest``, resuming ``dest.part``; verified before kept.

    Returns:
        The bytes received by this call (0 when ``dest`` was already there and good).

    Raises:
        ServerUnreachable: the download was cut (transient: the next run resumes it).
        BackupCorrupt: the blob's size or sha256 is not what the server named.
    """
    if dest.exists() and _sha256(dest) == sha256:
        return 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if size and have > size:
        part.unlink()
        have = 0
    received = 0
    if not size or have < size:
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with transport.stream(f"/device/v1/blobs/{sha256}", headers=headers) as response:
                if response.status_code == 404:
                    raise BackupError(f"the server has no backup {sha256[:12]} for this IPC")
                mode = "ab" if response.status_code == 206 else "wb"
                if response.status_code == 416:
                    mode = "ab"
                with part.open(mode) as sink:
                    if response.status_code != 416:
                        for chunk in response.iter_bytes():
                            sink.write(chunk)
                            received += len(chunk)
        except httpx.TransportError as e:
            raise ServerUnreachable(f"backup download cut after {received} bytes: {e}") from e
    if size and part.stat().st_size != size:
        raise BackupCorrupt(f"backup {sha256[:12]} is {part.stat().st_size} bytes, not {size}")
    if _sha256(part) != sha256:
        part.unlink()
        raise BackupCorrupt(f"backup {sha256[:12]} does not hash to its sha256; fetched again next")
    part.replace(dest)
    fsync_dir(dest.parent)
    return received


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
