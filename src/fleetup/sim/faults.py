"""Fault profiles: how often each kind of trouble strikes a simulated machine.

A profile is a set of per-machine probabilities. Each machine draws its own luck once, from a
``random.Random`` seeded with the run's seed and the machine's serial, so adding a machine
to the fleet does not change what happens to the others, and a seeded run is repeatable.
Durations are drawn around chart 3's budgets (backup 10 min, install 15, network 10,
registration 5, function test 15, training 10: 65 minutes a machine).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields, replace
from datetime import timedelta

# Chart 3's budgets in minutes; download has none (a few minutes on a good link).
BUDGET_MINUTES: dict[str, float] = {
    "backup": 10,
    "download": 3,
    "install": 15,
    "network": 10,
    "register": 5,
    "function_test": 15,
    "training": 10,
}


@dataclass(frozen=True)
class FaultRates:
    """Per-machine probabilities of each fault (0 to 1)."""

    network_outage: float = 0.0
    outage_needs_technician: float = 0.5
    install_failure: float = 0.0
    hardware_fault: float = 0.0
    power_cut: float = 0.0
    slow_link: float = 0.0
    user_problem: float = 0.0
    dissatisfied: float = 0.0

    def with_rates(self, **rates: float) -> FaultRates:
        """A copy with some rates changed; unknown names raise ``ValueError``."""
        known = {f.name for f in fields(self)}
        for name, value in rates.items():
            if name not in known:
                raise ValueError(f"no fault named {name!r}; known: {', '.join(sorted(known))}")
            if not 0 <= value <= 1:
                raise ValueError(f"the rate of {name} must be between 0 and 1")
        return replace(self, **rates)


PROFILES: dict[str, FaultRates] = {
    "none": FaultRates(),
    "realistic": FaultRates(
        network_outage=0.06,
        install_failure=0.05,
        hardware_fault=0.03,
        power_cut=0.03,
        slow_link=0.10,
        user_problem=0.06,
        dissatisfied=0.12,
    ),
    "harsh": FaultRates(
        network_outage=0.20,
        outage_needs_technician=0.6,
        install_failure=0.15,
        hardware_fault=0.10,
        power_cut=0.10,
        slow_link=0.30,
        user_problem=0.15,
        dissatisfied=0.30,
    ),
}


def profile(name: str) -> FaultRates:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"no fault profile {name!r}; choose {', '.join(PROFILES)}") from None


@dataclass(frozen=True)
class Luck:
    """What will happen to one machine, drawn once."""

    outage: bool
    outage_needs_technician: bool
    outage_minutes: float
    install_failure: bool
    hardware_fault: bool
    power_cut_step: str | None
    slow_link: bool
    user_problem: bool
    dissatisfied: bool
    score: int
    retest_score: int
    minutes: dict[str, float]
    restart_minutes: float

    def duration(self, step: str) -> timedelta:
        return timedelta(minutes=self.minutes[step])


POWER_CUT_STEPS = ("backup", "install", "network", "function_test")


def draw(rates: FaultRates, *, seed: int, serial: str) -> Luck:
    """The luck of machine ``serial`` in a run seeded ``seed``."""
    rng = random.Random(f"{seed}:{serial}")
    outage = rng.random() < rates.network_outage
    needs_technician = rng.random() < rates.outage_needs_technician
    install_failure = rng.random() < rates.install_failure
    hardware = rng.random() < rates.hardware_fault
    power_cut = rng.random() < rates.power_cut
    power_step = rng.choice(POWER_CUT_STEPS)
    slow = rng.random() < rates.slow_link
    user = rng.random() < rates.user_problem
    dissatisfied = rng.random() < rates.dissatisfied
    minutes = {
        step: round(budget * rng.triangular(0.5, 1.4, 0.85), 1)
        for step, budget in BUDGET_MINUTES.items()
    }
    if slow:
        minutes["download"] = round(rng.uniform(40, 180), 1)
    return Luck(
        outage=outage,
        outage_needs_technician=outage and needs_technician,
        outage_minutes=round(rng.uniform(20, 240), 1),
        install_failure=install_failure,
        hardware_fault=hardware,
        power_cut_step=power_step if power_cut else None,
        slow_link=slow,
        user_problem=user,
        dissatisfied=dissatisfied,
        score=rng.randint(4, 7) if dissatisfied else rng.randint(8, 10),
        retest_score=rng.randint(8, 10),
        minutes=minutes,
        restart_minutes=round(rng.uniform(3, 15), 1),
    )
