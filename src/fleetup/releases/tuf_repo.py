"""The TUF repository the agents verify releases with (python-tuf's Metadata API).

Metadata lives in ``var_dir/tuf/metadata/`` with consistent snapshots, exactly the names the
agent's ngclient asks for: ``N.root.json``, ``timestamp.json``, ``N.snapshot.json``,
``N.targets.json``. Targets are the release packages, served from the blob store as
``<sha256>.<name>``.

Keys are ed25519, made on first use, one per role, as PKCS#8 PEM files (mode 0600) named by
key id. The online keys (targets, snapshot, timestamp) sit in ``var_dir/keys/``; the root
key sits in ``var_dir/keys-offline/``, so an operator can move that folder to offline media
and bring it back only to rotate keys. Every version number only grows, which is what lets
python-tuf refuse an older (rolled back) timestamp, snapshot or targets.

Writers (``fleetup release add`` and the server's timestamp refresh) take a file lock, so
two of them never publish the same version twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# Both packages re-export these names without ``__all__``; mypy's strict mode cannot see that.
from securesystemslib.signer import (  # type: ignore[attr-defined]
    CryptoSigner,
    Signer,
    SSlibKey,
)
from tuf.api.metadata import (  # type: ignore[attr-defined]
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

from fleetup.core.errors import Conflict, InvalidInput

ROLES = ("root", "targets", "snapshot", "timestamp")
ONLINE_ROLES = ("targets", "snapshot", "timestamp")
#: How long each role's metadata is valid once signed.
LIFETIME = {
    "root": timedelta(days=365),
    "targets": timedelta(days=90),
    "snapshot": timedelta(days=14),
    "timestamp": timedelta(days=1),
}
#: Online metadata is signed again when it expires within this margin.
MARGIN = {
    "targets": timedelta(days=14),
    "snapshot": timedelta(days=3),
    "timestamp": timedelta(hours=6),
}
_METADATA_NAME = re.compile(r"(?:(\d+)\.)?(root|timestamp|snapshot|targets)\.json")


@dataclass(frozen=True)
class RoleInfo:
    """What ``fleetup keys show`` prints for one role."""

    role: str
    keyids: tuple[str, ...]
    version: int
    expires: datetime
    key_dir: Path


class TufRepository:
    """The signed metadata of the release targets.

    Args:
        var_dir: the server's ``var_dir``; metadata, keys and the lock live under it.
    """

    def __init__(self, var_dir: Path) -> None:
        self.metadata_dir = var_dir / "tuf" / "metadata"
        self.online_key_dir = var_dir / "keys"
        self.offline_key_dir = var_dir / "keys-offline"
        self._lock_file = var_dir / "tuf" / ".lock"

    # -- reading -------------------------------------------------------------------------

    @property
    def initialized(self) -> bool:
        return (self.metadata_dir / "1.root.json").is_file()

    def metadata_file(self, name: str) -> Path | None:
        """The file for a name the agent asks for, or None when there is none."""
        match = _METADATA_NAME.fullmatch(name)
        if match is None:
            return None
        path = self.metadata_dir / name
        return path if path.is_file() else None

    def root_bytes(self, version: int = 1) -> bytes:
        """A root version as published (version 1 is the trust anchor shipped with agents)."""
        return (self.metadata_dir / f"{version}.root.json").read_bytes()

    def _latest_version(self, role: str) -> int:
        versions = [
            int(path.name.split(".", 1)[0])
            for path in self.metadata_dir.glob(f"*.{role}.json")
            if path.name.split(".", 1)[0].isdigit()
        ]
        if not versions:
            raise Conflict("the TUF repository is not set up yet: add a release first")
        return max(versions)

    def _load(self, role: str) -> Metadata[Any]:
        if role == "timestamp":
            return Metadata.from_file(str(self.metadata_dir / "timestamp.json"))
        return Metadata.from_file(
            str(self.metadata_dir / f"{self._latest_version(role)}.{role}.json")
        )

    def roles(self) -> list[RoleInfo]:
        """Key ids, version and expiry of each role (for ``fleetup keys show``)."""
        root: Metadata[Root] = self._load("root")
        infos = []
        for role in ROLES:
            md = root if role == "root" else self._load(role)
            infos.append(
                RoleInfo(
                    role=role,
                    keyids=tuple(root.signed.roles[role].keyids),
                    version=md.signed.version,
                    expires=md.signed.expires,
                    key_dir=self._key_dir(role),
                )
            )
        return infos

    def target(self, name: str) -> TargetFile | None:
        """The signed entry of a target name, or None."""
        targets: Metadata[Targets] = self._load("targets")
        return targets.signed.targets.get(name)

    # -- writing -------------------------------------------------------------------------

    def ensure(self, now: datetime) -> None:
        """Make the keys and the first metadata if this repository has none yet."""
        now = _second(now)
        with self._locked():
            if self.initialized:
                return
            root = Root(expires=now + LIFETIME["root"], consistent_snapshot=True)
            for role in ROLES:
                root.add_key(self._new_key(role), role)
            root_md = Metadata(root)
            self._sign(root_md, root, "root")
            self._write(root_md, "1.root.json")
            targets = Metadata(Targets(expires=now + LIFETIME["targets"]))
            self._publish_targets(root, targets, now)

    def add_target(self, now: datetime, *, name: str, sha256: str, length: int) -> int:
        """Sign a new targets version listing ``name``; returns that version.

        Raises:
            Conflict: the name is already listed with other content.
        """
        now = _second(now)
        self.ensure(now)
        with self._locked():
            root = self._load("root").signed
            targets: Metadata[Targets] = self._load("targets")
            known = targets.signed.targets.get(name)
            if known is not None:
                if known.hashes.get("sha256") == sha256 and known.length == length:
                    return targets.signed.version
                raise Conflict(f"target {name} is already signed with other content")
            targets.signed.targets[name] = TargetFile(length, {"sha256": sha256}, name)
            targets.signed.version += 1
            targets.signed.expires = now + LIFETIME["targets"]
            self._publish_targets(root, targets, now)
            return targets.signed.version

    def refresh_timestamp(self, now: datetime) -> bool:
        """Sign online metadata again before it expires; True when something was signed.

        The timestamp (valid a day) is the one that matters in practice; snapshot and
        targets are renewed the same way when their margin is reached. Does nothing on a
        repository not set up yet.
        """
        if not self.initialized:
            return False
        now = _second(now)
        with self._locked():
            root = self._load("root").signed
            targets: Metadata[Targets] = self._load("targets")
            if targets.signed.expires - now < MARGIN["targets"]:
                targets.signed.version += 1
                targets.signed.expires = now + LIFETIME["targets"]
                self._publish_targets(root, targets, now)
                return True
            snapshot: Metadata[Snapshot] = self._load("snapshot")
            if snapshot.signed.expires - now < MARGIN["snapshot"]:
                self._publish_snapshot(root, snapshot, targets.signed.version, now)
                return True
            timestamp: Metadata[Timestamp] = self._load("timestamp")
            if timestamp.signed.expires - now < MARGIN["timestamp"]:
                self._publish_timestamp(root, timestamp, snapshot.signed.version, now)
                return True
            return False

    def rotate(self, role: str, now: datetime) -> str:
        """Replace ``role``'s key and publish a new root signed by the old and new root keys.

        The role's metadata is signed again with its new key (a new version), so clients
        switch as soon as they have read the new root. Returns the new key id.

        Raises:
            InvalidInput: unknown role.
            Conflict: the repository is not set up, or the root key is offline.
        """
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        now = _second(now)
        with self._locked():
            root_md: Metadata[Root] = self._load("root")
            root = root_md.signed
            old_root_signers = [self._signer(keyid, "root") for keyid in root.roles["root"].keyids]
            for keyid in list(root.roles[role].keyids):
                root.revoke_key(keyid, role)
            key = self._new_key(role)
            root.add_key(key, role)
            root.version += 1
            root.expires = now + LIFETIME["root"]
            root_md.signatures.clear()
            for signer in old_root_signers:
                root_md.sign(signer, append=True)
            if role == "root":
                root_md.sign(self._signer(key.keyid, "root"), append=True)
            self._write(root_md, f"{root.version}.root.json")
            targets: Metadata[Targets] = self._load("targets")
            targets.signed.version += 1
            self._publish_targets(root, targets, now)
            return key.keyid

    # -- machinery -----------------------------------------------------------------------

    def _publish_targets(self, root: Root, targets: Metadata[Targets], now: datetime) -> None:
        self._sign(targets, root, "targets")
        self._write(targets, f"{targets.signed.version}.targets.json")
        try:
            snapshot: Metadata[Snapshot] = self._load("snapshot")
        except Conflict:
            snapshot = Metadata(Snapshot(expires=now))
            snapshot.signed.version = 0
        self._publish_snapshot(root, snapshot, targets.signed.version, now)

    def _publish_snapshot(
        self, root: Root, snapshot: Metadata[Snapshot], targets_version: int, now: datetime
    ) -> None:
        snapshot.signed.version += 1
        snapshot.signed.expires = now + LIFETIME["snapshot"]
        snapshot.signed.meta["targets.json"] = MetaFile(version=targets_version)
        self._sign(snapshot, root, "snapshot")
        self._write(snapshot, f"{snapshot.signed.version}.snapshot.json")
        if (self.metadata_dir / "timestamp.json").is_file():
            timestamp: Metadata[Timestamp] = self._load("timestamp")
        else:
            timestamp = Metadata(Timestamp(expires=now))
            timestamp.signed.version = 0
        self._publish_timestamp(root, timestamp, snapshot.signed.version, now)

    def _publish_timestamp(
        self, root: Root, timestamp: Metadata[Timestamp], snapshot_version: int, now: datetime
    ) -> None:
        timestamp.signed.version += 1
        timestamp.signed.expires = now + LIFETIME["timestamp"]
        timestamp.signed.snapshot_meta = MetaFile(version=snapshot_version)
        self._sign(timestamp, root, "timestamp")
        self._write(timestamp, "timestamp.json")

    def _sign(self, md: Metadata[Any], root: Root, role: str) -> None:
        md.signatures.clear()
        for keyid in root.roles[role].keyids:
            md.sign(self._signer(keyid, role), append=True)

    def _key_dir(self, role: str) -> Path:
        return self.offline_key_dir if role == "root" else self.online_key_dir

    def _new_key(self, role: str) -> SSlibKey:
        private = Ed25519PrivateKey.generate()
        key = SSlibKey.from_crypto(private.public_key())
        folder = self._key_dir(role)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(folder / f"{key.keyid}.pem", pem)
        return key

    def _signer(self, keyid: str, role: str) -> Signer:
        path = self._key_dir(role) / f"{keyid}.pem"
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            where = "bring the offline root key back" if role == "root" else "restore it"
            raise Conflict(
                f"the {role} key {keyid[:12]} is not in {path.parent}; {where}"
            ) from None
        private = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise Conflict(f"{path} does not hold an ed25519 key")
        return CryptoSigner(private, SSlibKey.from_crypto(private.public_key(), keyid))

    def _write(self, md: Metadata[Any], name: str) -> None:
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        path = self.metadata_dir / name
        temp = path.with_name(f".{name}.tmp")
        temp.write_bytes(md.to_bytes())
        os.replace(temp, path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._lock_file.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_file.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _write_private(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temp, path)


def _second(moment: datetime) -> datetime:
    """TUF writes expiry dates to the second; keep the in-memory value the same."""
    return moment.replace(microsecond=0)
