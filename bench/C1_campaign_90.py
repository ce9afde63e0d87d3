"""C1: the 90-machine, 16-week project end to end with faults, on simulated time.

The simulator runs the sample fleet (``examples/inventory.csv``) with the realistic fault
profile against an in-process server on SQLite: every IPC speaks the device protocol, every
technician and customer the REST API, and the clock moves through the simulation endpoint.
The figure is the wall time of the whole run. ``--quick`` runs 30 machines.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench._floor import report
from bench._report import Figure, emit
from fleetup.core.config import Settings
from fleetup.sim.runner import Options, run


def main() -> None:
    quick = "--quick" in sys.argv
    machines = 30 if quick else 90
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(var_dir=Path(tmp), secret_key="bench-secret-key-not-for-production")
        result = run(settings, Options(machines=machines, seed=1, profile="realistic"))
    print(
        f"# {machines} machines: {result.succeeded} upgraded, {result.failed} not, "
        f"{result.requests} requests, {result.clock_moves} clock moves, "
        f"{result.requests / max(result.wall_seconds, 1e-9):.0f} requests/s",
        flush=True,
    )
    report(f"{machines} machines", result.requests, result.wall_seconds)
    name = "campaign_30_wall" if quick else "campaign_90_wall"
    emit(Figure("C1", name, result.wall_seconds, "s", "<=", 10 if not quick else 4))


if __name__ == "__main__":
    main()
