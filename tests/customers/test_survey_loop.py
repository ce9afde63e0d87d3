"""Chart 5 per machine: a low score starts the improvement loop, a good one closes it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from customer_support import make_machine, start, walk
from sqlalchemy import select

from fleetup.api.deps import Server
from fleetup.core.clock import ManualClock
from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict
from fleetup.customers import scheduled, stats, surveys
from fleetup.customers.links import LinkRefused, Links
from fleetup.customers.models import SurveyFollowUp
from fleetup.fleet import service as fleet
from fleetup.notify.models import Notification
from fleetup.upgrades import service as upgrades
from fleetup.worker import Scheduler
from fleetup.worker.jobs import JOBS


def _completed(ctx: Ctx, parts: Server, serial: str) -> None:
    instance_id = start(ctx, parts.library, serial)
    walk(ctx, parts.library, instance_id, until="V")


def _links(parts: Server) -> Links:
    return Links(parts.signer, "http://fleetup.test")


def test_a_survey_is_refused_before_the_upgrade_completes(ctx: Ctx, server_parts: Server) -> None:
    serial = make_machine(ctx)
    start(ctx, server_parts.library, serial)
    with pytest.raises(Conflict):
        surveys.open_survey(
            ctx, serial=serial, library=server_parts.library, links=_links(server_parts)
        )


def test_a_score_of_6_loops_through_g_h_i_and_a_new_survey_of_9_closes_chart_5(
    ctx: Ctx, server_parts: Server, clock: ManualClock
) -> None:
    parts = server_parts
    serial = make_machine(ctx)
    _completed(ctx, parts, serial)

    assert scheduled.open_due_surveys(parts) == 1
    assert scheduled.open_due_surveys(parts) == 0
    ctx.session.expire_all()
    first = surveys.get_all(ctx.session, serial=serial)[0]
    token = surveys.survey_link(parts.signer, first).removeprefix("/s/")
    invites = ctx.session.scalars(
        select(Notification).where(Notification.key == f"survey:{first.id}")
    ).all()
    assert invites, "the customer's contact is invited"

    opened = surveys.open_link(ctx.session, signer=parts.signer, token=token, now=clock.now())
    surveys.answer(ctx, parts.library, survey=opened, score=6, comment="畫面太慢")
    ctx.session.commit()
    loop = upgrades.get(ctx.session, instance_id=first.instance_id)
    assert loop.current_node == "G"
    with pytest.raises(LinkRefused) as used:
        surveys.open_link(ctx.session, signer=parts.signer, token=token, now=clock.now())
    assert used.value.reason == "used"

    for kind, note, owner in (
        ("understanding", "the dashboard loads slowly over 4G", ""),
        ("improvement", "enable the local cache", "tech-lin"),
        ("retest", "dashboard loads in 2 s", ""),
    ):
        surveys.record_staff_step(
            ctx,
            parts.library,
            instance_id=loop.id,
            kind=kind,
            note=note,
            owner=owner,
            links=_links(parts),
        )
    ctx.session.commit()
    assert loop.current_node == "D"
    second = surveys.get_all(ctx.session, serial=serial)[-1]
    assert (second.round, second.status) == (2, "open")

    surveys.answer(ctx, parts.library, survey=second, score=9)
    ctx.session.commit()
    assert loop.status == "completed"
    follow = ctx.session.scalars(
        select(SurveyFollowUp).where(SurveyFollowUp.kind == "periodic")
    ).all()
    assert [f.due_at - clock.now() for f in follow] == [timedelta(days=d) for d in (30, 90, 180)]
    figures = stats.for_serials(ctx.session, serials=[serial])
    assert (figures.answered, figures.distribution["9"], figures.nps) == (1, 1, 100.0)


def test_an_expired_survey_link_is_refused_and_writes_nothing(
    ctx: Ctx, server_parts: Server, clock: ManualClock
) -> None:
    serial = make_machine(ctx)
    _completed(ctx, server_parts, serial)
    path = surveys.open_survey(
        ctx, serial=serial, library=server_parts.library, links=_links(server_parts)
    )
    ctx.session.commit()
    clock.advance(timedelta(days=15))
    with pytest.raises(LinkRefused) as refused:
        surveys.open_link(ctx.session, signer=server_parts.signer, token=path[3:], now=clock.now())
    assert refused.value.reason == "expired"
    with pytest.raises(LinkRefused) as forged:
        surveys.open_link(
            ctx.session,
            signer=server_parts.signer,
            token=("B" if path[3] == "A" else "A") + path[4:],
            now=clock.now(),
        )
    assert forged.value.reason == "invalid"


def test_statistics_per_customer_count_each_machines_latest_score() -> None:
    figures = stats.summarise([10, 9, 8, 7, 6, 0])
    assert figures.promoters == 2 and figures.detractors == 2 and figures.passives == 2
    assert figures.nps == 0.0
    assert figures.share_at_least_8 == 0.5


def test_the_worker_opens_a_survey_when_an_upgrade_completes_and_then_skips_the_job(
    ctx: Ctx, server_parts: Server, clock: ManualClock
) -> None:
    parts = server_parts
    job = next(job for job in JOBS if job.name == "customers.open_due_surveys")
    scheduler = Scheduler([replace(job, every=timedelta(0))])
    first = make_machine(ctx)
    _completed(ctx, parts, first)
    ctx.session.commit()
    assert scheduler.run_due(parts) == {"customers.open_due_surveys": 1}  # its first run
    assert scheduler.run_due(parts) == {}  # nothing completed since

    second = make_machine(ctx, serial="CM-0002", customer="C02")
    instance_id = start(ctx, parts.library, second)
    ctx.session.commit()
    assert scheduler.run_due(parts) == {}  # an upgrade under way: no survey yet
    walk(ctx, parts.library, instance_id, until="V")
    ctx.session.commit()
    assert scheduler.run_due(parts) == {"customers.open_due_surveys": 1}
    assert scheduler.run_due(parts) == {}
    assert [s.machine_id for s in surveys.get_all(ctx.session)] == [
        fleet.get_machine(ctx.session, serial=serial).id for serial in (first, second)
    ]
