"""A3: the agent's backup against ``tar -cf - DIR | zstd -3 -T0`` on the same data.

A generated data folder (1 GB, ``--quick`` 100 MB: CSV-like logs and counters, recipe text
files, random binary blobs) is backed up by :func:`fleetup.agent.backup.create` (tar +
zstandard level 3, sha256 of every file, manifest) followed by :func:`~fleetup.agent.backup.verify`
(the whole archive read back and checked), and by Debian's ``zstd`` CLI behind ``tar``,
writing to a file in the same temporary folder. The two alternate over the rounds. The
figure is the ratio of their rates (data bytes per second, ours / CLI). Needs ``zstd`` on
``PATH``; without it the benchmark says so and prints no figure.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._fleet import MB, make_site_data
from bench._report import Figure, emit
from fleetup.agent import backup


def _ours(data: Path, out: Path) -> float:
    archive = out / "ours.tar.zst"
    started = time.perf_counter()
    made = backup.create([data], archive)
    backup.verify(made.path, made.manifest)
    elapsed = time.perf_counter() - started
    archive.unlink()
    made.manifest_path.unlink()
    return elapsed


def _cli(data: Path, out: Path, zstd: str) -> float:
    archive = out / "cli.tar.zst"
    started = time.perf_counter()
    with archive.open("wb") as sink:
        tar = subprocess.Popen(
            ["tar", "-cf", "-", "-C", str(data.parent), data.name], stdout=subprocess.PIPE
        )
        assert tar.stdout is not None
        done = subprocess.run(
            [zstd, "-3", "-T0", "-q", "-c"],
            stdin=tar.stdout,
            stdout=sink,
            check=False,
            timeout=900,
        )
        tar.stdout.close()
        tar.wait(timeout=900)
    elapsed = time.perf_counter() - started
    if done.returncode or tar.returncode:
        raise RuntimeError(f"tar | zstd failed ({tar.returncode}, {done.returncode})")
    archive.unlink()
    return elapsed


def main() -> None:
    zstd = shutil.which("zstd")
    if zstd is None:
        print("# A3 skipped: the zstd CLI is not installed (Debian: apt-get install zstd)")
        return
    quick = "--quick" in sys.argv
    total = (100 if quick else 1024) * MB
    rounds = 2
    with tempfile.TemporaryDirectory(prefix="bench-a3-") as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "data"
        size = make_site_data(data, total)
        out = tmp / "out"
        out.mkdir()
        ours = cli = 0.0
        for index in range(rounds):
            if index % 2 == 0:
                ours += _ours(data, out)
                cli += _cli(data, out, zstd)
            else:
                cli += _cli(data, out, zstd)
                ours += _ours(data, out)
    ours_rate = size * rounds / ours / MB
    cli_rate = size * rounds / cli / MB
    print(
        f"# backup+verify {ours_rate:.0f} MB/s, tar | zstd -3 -T0 {cli_rate:.0f} MB/s "
        f"over {size / MB:.0f} MB",
        flush=True,
    )
    emit(Figure("A3", "backup_vs_zstd_cli", ours_rate / cli_rate, "ratio", ">=", 0.5))


if __name__ == "__main__":
    main()
