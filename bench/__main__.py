"""``python -m bench [--quick]``: run every benchmark here, then a summary table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench._report import LINE

HERE = Path(__file__).resolve().parent


def main() -> int:
    quick = ["--quick"] if "--quick" in sys.argv[1:] else []
    rows: list[tuple[str, str, str, str]] = []
    failed_runs = 0
    for script in sorted(HERE.glob("[A-Z]*_*.py")):
        module = f"bench.{script.stem}"
        print(f"# {module}", flush=True)
        result = subprocess.run(
            [sys.executable, "-m", module, *quick], capture_output=True, text=True, check=False
        )
        sys.stdout.write(result.stdout)
        if result.returncode != 0:
            failed_runs += 1
            sys.stdout.write(result.stderr[-2000:])
        for line in result.stdout.splitlines():
            match = LINE.match(line)
            if match:
                figure = f"{match['id']} {match['name']}"
                goal = f"{match['op']} {match['target']} {match['unit']}"
                rows.append((figure, match["value"], goal, match["verdict"]))
    width = max((len(r[0]) for r in rows), default=10)
    print()
    print(f"{'figure':<{width}}  {'value':>10}  {'goal':<22} result")
    for figure, value, goal, verdict in rows:
        print(f"{figure:<{width}}  {value:>10}  {goal:<22} {verdict}")
    failures = sum(1 for r in rows if r[3] == "FAIL") + failed_runs
    print(f"\n{len(rows)} figures, {failures} failing")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
