"""Satisfaction figures: the distribution of scores, the share of 8 or more, and the NPS.

Each machine counts once, with the score of its latest answered survey (a retest's answer
replaces the first one), so a wave's figure is about its machines, not about its rounds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetup.customers.models import Survey
from fleetup.customers.schemas import SatisfactionStats
from fleetup.fleet.models import Customer, Machine, Site


def summarise(scores: Iterable[int]) -> SatisfactionStats:
    """Figures for a list of scores; NPS is promoters (9-10) minus detractors (0-6), in %."""
    values = list(scores)
    distribution = {str(score): 0 for score in range(11)}
    for value in values:
        distribution[str(value)] += 1
    count = len(values)
    promoters = sum(1 for v in values if v >= 9)
    detractors = sum(1 for v in values if v <= 6)
    return SatisfactionStats(
        answered=count,
        distribution=distribution,
        share_at_least_8=round(sum(1 for v in values if v >= 8) / count, 4) if count else None,
        nps=round(100 * (promoters - detractors) / count, 1) if count else None,
        promoters=promoters,
        passives=count - promoters - detractors,
        detractors=detractors,
    )


def latest_scores(session: Session) -> dict[str, tuple[str, int]]:
    """serial -> (customer code, latest answered score)."""
    rows = session.execute(
        select(Machine.serial, Customer.code, Survey.score)
        .join(Machine, Machine.id == Survey.machine_id)
        .join(Site, Site.id == Machine.site_id)
        .join(Customer, Customer.id == Site.customer_id)
        .where(Survey.status == "answered", Survey.score.is_not(None))
        .order_by(Survey.answered_at, Survey.id)
    ).all()
    latest: dict[str, tuple[str, int]] = {}
    for serial, code, score in rows:
        if score is not None:
            latest[serial] = (code, int(score))
    return latest


def for_serials(session: Session, *, serials: Sequence[str] | None = None) -> SatisfactionStats:
    """Figures for a group of machines (a wave), or for the whole fleet."""
    latest = latest_scores(session)
    wanted = set(serials) if serials else set(latest)
    return summarise(score for serial, (_, score) in latest.items() if serial in wanted)


def per_customer(session: Session) -> dict[str, SatisfactionStats]:
    """Figures per customer code."""
    grouped: dict[str, list[int]] = {}
    for code, score in latest_scores(session).values():
        grouped.setdefault(code, []).append(score)
    return {code: summarise(scores) for code, scores in sorted(grouped.items())}
