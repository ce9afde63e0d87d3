"""C2: how the simulated campaign scales with the fleet: 1,000 and 10,000 machines.

Both runs use the same seed and fault profile, in-process on SQLite. The figures are the wall
time of the large run and the ratio of the two times (a linear system gives 10).
``--quick`` runs 100 and 1,000 machines.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench._floor import report
from bench._report import Figure, emit
from fleetup.core.config import Settings
from fleetup.sim.result import SimResult
from fleetup.sim.runner import Options, run


def _run(machines: int) -> SimResult:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(var_dir=Path(tmp), secret_key="bench-secret-key-not-for-production")
        result = run(settings, Options(machines=machines, seed=1, profile="realistic"))
    print(
        f"# {machines} machines: {result.wall_seconds} s, {result.requests} requests, "
        f"{result.succeeded} upgraded, {result.failed} not",
        flush=True,
    )
    return result


def main() -> None:
    quick = "--quick" in sys.argv
    small, large = (100, 1_000) if quick else (1_000, 10_000)
    first = _run(small)
    second = _run(large)
    emit(Figure("C2", f"fleet_{large}_wall", second.wall_seconds, "s", "<=", 120 * large / 10_000))
    report(f"{large} machines", second.requests, second.wall_seconds)
    ratio = second.wall_seconds / max(first.wall_seconds, 1e-9)
    emit(Figure("C2", f"scaling_{large}_over_{small}", ratio, "ratio", "<=", 11))


if __name__ == "__main__":
    main()
