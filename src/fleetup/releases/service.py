"""Releases: validate a package, store it by content, record it, sign it into TUF.

``add`` is the whole of ``fleetup release add``: a bad package is refused before anything is
stored; a good one lands in the blob store, gets a ``Release`` row (audited) and a new signed
targets version, so agents can download it as soon as the command returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.db import ById, looked_up, remember
from fleetup.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from fleetup.releases.blobs import BlobStore, LocalBlobStore
from fleetup.releases.models import Release
from fleetup.releases.package import VERSION, read_manifest, target_name
from fleetup.releases.tuf_repo import TufRepository


def blob_store(settings: Settings) -> BlobStore:
    """The configured blob store (a local folder for now)."""
    return LocalBlobStore(settings.effective_blob_dir)


def tuf_repository(settings: Settings) -> TufRepository:
    return TufRepository(settings.var_dir)


def get(session: Session, *, version: str) -> Release:
    known: Release | None = looked_up(session, "release", version)
    if known is not None and known.version == version:
        return known
    found = session.scalar(select(Release).where(Release.version == version))
    if found is None:
        raise NotFound(f"no release {version}; add it with `fleetup release add`")
    remember(session, "release", version, found)
    return found


def get_by_id(session: Session, *, release_id: int) -> Release:
    found = _RELEASE(session, release_id)
    if found is None:
        raise NotFound(f"no release {release_id}")
    return found


_RELEASE = ById(Release)


def get_by_target(session: Session, *, sha256: str, target: str) -> Release | None:
    return session.scalar(select(Release).where(Release.sha256 == sha256, Release.target == target))


def is_release_blob(session: Session, *, sha256: str) -> bool:
    return session.scalar(select(Release.id).where(Release.sha256 == sha256)) is not None


def get_all(session: Session) -> Sequence[Release]:
    return session.scalars(select(Release).order_by(Release.id)).all()


def add(
    ctx: Ctx,
    settings: Settings,
    *,
    path: Path,
    version: str,
    store: BlobStore | None = None,
    repository: TufRepository | None = None,
) -> Release:
    """Add the package at ``path`` as release ``version``.

    Args:
        path: a .tar.gz (any tar) or .zip with manifest.json at its top.
        version: what the manifest's ``version`` must say.

    Returns:
        The new release (flushed, not committed: the caller commits).

    Raises:
        InvalidInput: the file is missing, not a valid package, or its version differs.
        Conflict: that version exists already.
    """
    if not VERSION.fullmatch(version):
        raise InvalidInput(
            f"{version!r} is not a version name",
            [FieldProblem("version", "letters, digits and ._+- (at most 64)")],
        )
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file", [FieldProblem("path", "no such file")])
    manifest = read_manifest(path)
    if manifest["version"] != version:
        message = f"the package says version {manifest['version']}, not {version}"
        raise InvalidInput(
            f"{path.name} is not release {version}: {message}",
            [FieldProblem("manifest.version", message)],
        )
    if ctx.session.scalar(select(Release.id).where(Release.version == version)) is not None:
        raise Conflict(f"release {version} exists already; give the new package a new version")
    store = store or blob_store(settings)
    repository = repository or tuf_repository(settings)
    info = store.add_file(path)
    release = Release(
        version=version,
        target=target_name(version, path),
        sha256=info.sha256,
        length=info.length,
        manifest=manifest,
        created_at=ctx.now(),
    )
    ctx.session.add(release)
    ctx.audit("create", release, None)
    repository.add_target(ctx.now(), name=release.target, sha256=info.sha256, length=info.length)
    return release
