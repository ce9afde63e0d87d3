"""``release add``: bad packages are refused with the problem named and nothing stored."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetup.cli import app as cli_app
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict, InvalidInput
from fleetup.releases import service as releases
from fleetup.releases.blobs import LocalBlobStore, file_sha256
from releases.release_helpers import make_package


def _stored_blobs(settings: Settings) -> list[Path]:
    root = settings.effective_blob_dir
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _refused(ctx: Ctx, settings: Settings, path: Path, version: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        releases.add(ctx, settings, path=path, version=version)
    assert releases.get_all(ctx.session) == []
    assert _stored_blobs(settings) == []
    assert not (settings.var_dir / "tuf" / "metadata").exists()
    return caught.value


def test_a_package_without_manifest_is_refused_and_nothing_is_stored(
    ctx: Ctx, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "p.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        readme = tmp_path / "README"
        readme.write_text("hello")
        archive.add(readme, arcname="README")
    error = _refused(ctx, settings, path, "2.0.0")
    assert "no manifest.json" in error.message


def test_a_version_that_differs_from_the_manifest_is_refused(
    ctx: Ctx, settings: Settings, tmp_path: Path
) -> None:
    path = make_package(tmp_path / "p.tar.gz", version="2.0.1")
    error = _refused(ctx, settings, path, "2.0.0")
    assert "says version 2.0.1, not 2.0.0" in error.message
    assert error.problems[0].field == "manifest.version"


@pytest.mark.parametrize(
    ("manifest", "field"),
    [
        ({"version": "2.0.0", "hooks": {"post_install": []}}, "manifest.hooks.post_install"),
        ({"version": "2.0.0", "models": "XK-200"}, "manifest.models"),
        ({"version": "2.0.0", "os": ["macos"]}, "manifest.os"),
        ({"version": "../2"}, "manifest.version"),
        ({"version": "2.0.0", "hooks": {"self_test": [42]}}, "manifest.hooks.self_test"),
    ],
)
def test_an_invalid_manifest_is_refused_naming_the_field(
    ctx: Ctx, settings: Settings, tmp_path: Path, manifest: dict[str, object], field: str
) -> None:
    path = make_package(tmp_path / "p.zip", version="2.0.0", manifest=manifest, fmt="zip")
    error = _refused(ctx, settings, path, "2.0.0")
    assert error.problems[0].field == field


def test_an_entry_escaping_the_folder_is_refused(
    ctx: Ctx, settings: Settings, tmp_path: Path
) -> None:
    path = make_package(tmp_path / "p.tar.gz", version="2.0.0", files={"../evil.sh": b"rm"})
    error = _refused(ctx, settings, path, "2.0.0")
    assert "unsafe path" in error.message


def test_a_file_that_is_no_archive_is_refused(ctx: Ctx, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "p.tar.gz"
    path.write_bytes(b"not an archive at all")
    error = _refused(ctx, settings, path, "2.0.0")
    assert "not a readable tar or zip" in error.message


def test_a_good_package_is_stored_by_content_recorded_and_signed(
    ctx: Ctx, settings: Settings, tmp_path: Path
) -> None:
    path = make_package(tmp_path / "p.tar.gz", version="2.0.0", files={"bin/run": b"#!"})
    release = releases.add(ctx, settings, path=path, version="2.0.0")
    ctx.session.commit()
    info = file_sha256(path)
    assert (release.sha256, release.length) == (info.sha256, info.length)
    assert release.target == "ipc-2.0.0.tar.gz"
    store = LocalBlobStore(settings.effective_blob_dir)
    assert store.path(info.sha256).read_bytes() == path.read_bytes()
    signed = releases.tuf_repository(settings).target("ipc-2.0.0.tar.gz")
    assert signed is not None and signed.hashes["sha256"] == info.sha256
    with pytest.raises(Conflict, match="exists already"):
        releases.add(ctx, settings, path=path, version="2.0.0")


def test_blobs_are_content_addressed_and_stored_once(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    first = tmp_path / "a"
    second = tmp_path / "b"
    first.write_bytes(b"same bytes")
    second.write_bytes(b"same bytes")
    assert store.add_file(first) == store.add_file(second, move=True)
    assert not second.exists()
    assert len([p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]) == 1
    assert store.open(file_sha256(first).sha256).read() == b"same bytes"


def test_the_cli_adds_lists_and_shows_keys(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETUP_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("FLEETUP_DATABASE_URL", settings.database_url)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    bad = make_package(tmp_path / "bad.tar.gz", version="9.9.9")
    refused = runner.invoke(cli_app, ["release", "add", str(bad), "--version", "1.0.0"])
    assert refused.exit_code == 1 and "not 1.0.0" in refused.output
    good = make_package(tmp_path / "good.tar.gz", version="1.0.0")
    added = runner.invoke(cli_app, ["release", "add", str(good), "--version", "1.0.0"])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli_app, ["release", "list"])
    assert "1.0.0" in listed.output and "ipc-1.0.0.tar.gz" in listed.output
    shown = runner.invoke(cli_app, ["keys", "show"])
    assert shown.exit_code == 0
    for role in ("root", "targets", "snapshot", "timestamp"):
        assert role in shown.output
    assert "keys-offline" in shown.output
