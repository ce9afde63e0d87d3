"""O2: when an unacknowledged incident escalates, against the 15:00 promise.

In each trial a machine falls silent, the real ``watch`` job opens an incident and tells
on-call, nobody acknowledges, and the real ``Scheduler`` runs the operations jobs one simulated
second at a time until the ``incident_escalated`` notification is queued. Trials start the
worker at different phases. Figures: the latest escalation after detection (goal 15:00 + 5 s)
and the earliest (goal no sooner than 15:00 - 5 s).
"""

from __future__ import annotations

import sys
from datetime import timedelta

from bench._operations import bench_server
from bench._report import Figure, emit

PROMISE_S = 15 * 60


def trial(offset_s: int) -> float:
    with bench_server(heartbeat_missing_s=60, watch_every_s=5) as bench:
        serials = sorted(bench.callers)
        bench.beat(serials)
        for _ in range(offset_s):
            bench.step()
        others = serials[1:]
        detected = None
        for second in range(1, PROMISE_S + 300):
            bench.step()
            if second % 30 == 0:
                bench.beat(others)
            if detected is None:
                detected = bench.first_notification("incident_opened")
                continue
            escalated = bench.first_notification("incident_escalated")
            if escalated is not None:
                return (escalated - detected) / timedelta(seconds=1)
    raise RuntimeError("no escalation")


def main() -> None:
    quick = "--quick" in sys.argv
    offsets = [0, 3] if quick else [0, 1, 2, 3, 4, 6, 9]
    times = [trial(o) for o in offsets]
    emit(Figure("O2", "escalation_time_latest", max(times), "s", "<=", PROMISE_S + 5))
    emit(Figure("O2", "escalation_time_earliest", min(times), "s", ">=", PROMISE_S - 5))


if __name__ == "__main__":
    main()
