"""Packages unpack safely into version folders; `current` switches and rolls back atomically."""

from __future__ import annotations

import io
import json
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from agent_helpers import make_package

from fleetup.agent import install
from fleetup.agent.errors import HookFailed, PackageRejected


def _install(tmp_path: Path, version: str, **kwargs: object) -> Path:
    package = tmp_path / f"pkg-{version}.tar.gz"
    make_package(package, version=version, **kwargs)  # type: ignore[arg-type]
    root = tmp_path / "program"
    install.unpack(package, root, install.read_manifest(package).version)
    return root


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_install_switch_and_rollback_keep_current_consistent(tmp_path: Path, fmt: str) -> None:
    root = tmp_path / "program"
    for version in ("1.0.0", "2.0.0"):
        package = tmp_path / f"pkg-{version}.{fmt}"
        make_package(package, version=version, files={"app.txt": version}, fmt=fmt)
        folder = install.unpack(package, root, version)
        assert (folder / "app.txt").read_text() == version
    assert install.switch(root, "1.0.0") is None
    assert install.current_version(root) == "1.0.0"

    assert install.switch(root, "2.0.0") == "1.0.0"
    assert install.switch(root, "2.0.0") == "1.0.0"  # repeating changes nothing
    assert (install.current_version(root), install.previous_version(root)) == ("2.0.0", "1.0.0")

    assert install.roll_back(root, to="1.0.0") == "1.0.0"
    assert install.roll_back(root, to="1.0.0") == "1.0.0"
    assert install.current_version(root) == "1.0.0"
    assert (root / "versions" / "2.0.0" / "app.txt").exists()
    assert sorted(p.name for p in root.iterdir()) == ["current", "previous", "versions"]


def test_switch_refuses_a_version_that_is_not_unpacked(tmp_path: Path) -> None:
    with pytest.raises(PackageRejected):
        install.switch(tmp_path, "9.9.9")
    assert install.current_version(tmp_path) is None


@pytest.mark.parametrize(
    "name", ["../evil.txt", "/etc/evil.txt", "sub/../../evil.txt", "C:/evil.txt", "..\\evil.txt"]
)
def test_zip_with_path_traversal_is_refused_and_nothing_is_written(
    tmp_path: Path, name: str
) -> None:
    package = tmp_path / "bad.zip"
    make_package(package, version="2.0.0", fmt="zip", extra_entries={name: b"x"})
    with pytest.raises(PackageRejected, match="unsafe"):
        install.unpack(package, tmp_path / "program", "2.0.0")
    assert not (tmp_path / "evil.txt").exists()
    assert list((tmp_path / "program" / "versions").iterdir()) == []


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink"])
def test_tar_with_traversal_or_links_is_refused(tmp_path: Path, kind: str) -> None:
    package = tmp_path / "bad.tar.gz"
    with tarfile.open(package, "w:gz") as archive:
        manifest = json.dumps({"version": "2.0.0"}).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        archive.addfile(info, io.BytesIO(manifest))
        evil = tarfile.TarInfo(
            {"dotdot": "../evil", "absolute": "/tmp/evil", "symlink": "link", "hardlink": "hard"}[
                kind
            ]
        )
        if kind == "symlink":
            evil.type, evil.linkname = tarfile.SYMTYPE, "/etc/passwd"
            archive.addfile(evil)
        elif kind == "hardlink":
            evil.type, evil.linkname = tarfile.LNKTYPE, "../../etc/passwd"
            archive.addfile(evil)
        else:
            evil.size = 1
            archive.addfile(evil, io.BytesIO(b"x"))
    with pytest.raises(PackageRejected, match="unsafe"):
        install.unpack(package, tmp_path / "program", "2.0.0")
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "program" / "versions" / "2.0.0").exists()


def test_manifest_problems_are_rejected(tmp_path: Path) -> None:
    for bad in (
        {"version": "../x"},
        {"version": "1", "hooks": {"post": []}},
        {"version": "1", "models": "XK"},
    ):
        with pytest.raises(PackageRejected):
            install.parse_manifest(bad)
    package = tmp_path / "nomanifest.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("app.txt", "x")
    with pytest.raises(PackageRejected, match=r"no manifest\.json"):
        install.read_manifest(package)
    not_an_archive = tmp_path / "junk.tar.gz"
    not_an_archive.write_bytes(b"junk")
    with pytest.raises(PackageRejected):
        install.read_manifest(not_an_archive)


def test_package_for_another_model_is_refused(tmp_path: Path) -> None:
    manifest = install.parse_manifest({"version": "2", "models": ["XK-200"]})
    install.check_fits(manifest, model="XK-200")
    install.check_fits(manifest, model=None)
    with pytest.raises(PackageRejected, match="XK-100"):
        install.check_fits(manifest, model="XK-100")


def test_hooks_run_in_the_version_folder_with_the_documented_environment(tmp_path: Path) -> None:
    script = (
        "import os, pathlib; pathlib.Path('seen.txt').write_text("
        "os.environ['FLEETUP_VERSION'] + '|' + os.environ['FLEETUP_DATA_DIRS'])"
    )
    root = _install(tmp_path, "2.0.0", hooks={"pre_install": [["{python}", "-c", script]]})
    manifest = install.parse_manifest(
        {"version": "2.0.0", "hooks": {"pre_install": [["{python}", "-c", script]]}}
    )
    env = install.hook_env(
        install_root=root,
        version="2.0.0",
        previous="1.0.0",
        data_dirs=[tmp_path / "data"],
        work_dir=tmp_path / "work",
        backup_archive=None,
    )
    results = install.run_hooks(
        "pre_install", manifest, cwd=root / "versions" / "2.0.0", env=env, timeout_s=30
    )
    assert results[0].ok
    assert (root / "versions" / "2.0.0" / "seen.txt").read_text() == f"2.0.0|{tmp_path / 'data'}"


def test_failing_or_slow_hook_raises_hook_failed_with_output(tmp_path: Path) -> None:
    failing = install.parse_manifest(
        {
            "version": "2",
            "hooks": {
                "migrate_data": [
                    ["{python}", "-c", "print('schema v7 missing'); raise SystemExit(3)"]
                ]
            },
        }
    )
    with pytest.raises(HookFailed) as caught:
        install.run_hooks("migrate_data", failing, cwd=tmp_path, env={}, timeout_s=30)
    assert caught.value.returncode == 3
    assert "schema v7 missing" in caught.value.output_tail

    slow = install.parse_manifest(
        {
            "version": "2",
            "hooks": {"pre_install": [["{python}", "-c", "import time; time.sleep(30)"]]},
        }
    )
    with pytest.raises(HookFailed) as caught:
        install.run_hooks("pre_install", slow, cwd=tmp_path, env={}, timeout_s=0.5)
    assert caught.value.returncode is None
    assert sys.executable in caught.value.command
