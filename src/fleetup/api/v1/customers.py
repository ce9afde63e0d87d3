"""Customer notices, acceptances and satisfaction surveys.

Routes under ``/public/`` are what a customer's signed link reaches without signing in; the
token in the path is the link's. A link that is forged is refused with 403, one that was
used or has expired with 410, and nothing is written either way.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from fleetup.api.access import READERS, GuardedRoute, allow, public
from fleetup.api.deps import Server, db, server, write_context
from fleetup.api.schemas import RowId
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.customers import acceptances, notices, stats, surveys
from fleetup.customers.certificate import NoCjkFont, render_pdf
from fleetup.customers.links import LinkRefused, Links
from fleetup.customers.presenting import (
    acceptance_out,
    certificate_labels,
    survey_out,
    visit_out,
)
from fleetup.customers.schemas import (
    AcceptanceIn,
    AcceptanceOut,
    FollowUpIn,
    FollowUpOut,
    LinkOut,
    NoticeAnswerIn,
    PublicNoticeOut,
    PublicSurveyOut,
    SatisfactionStats,
    SurveyAnswerIn,
    SurveyOut,
    VisitIn,
    VisitOut,
)

router = APIRouter(route_class=GuardedRoute, tags=["customers"])
read = allow(*READERS)
staff = allow(Role.manager, Role.technician)
manage = allow(Role.manager)
REFUSED = {
    "invalid": "this link is not valid; ask your fleetup contact for a new one",
    "expired": "this link has expired; ask your fleetup contact for a new one",
    "used": "this link was used already; each link can be answered once",
}


def _links(parts: Server) -> Links:
    return Links(parts.signer, parts.settings.effective_base_url)


def refused(error: LinkRefused) -> HTTPException:
    return HTTPException(error.status, REFUSED[error.reason])


def _customer_ctx(request: Request, session: Session, who: str) -> Ctx:
    return Ctx(session=session, actor=f"customer:{who}", clock=server(request).clock)


# -- visits and notices ---------------------------------------------------------------------


@router.post("/visits", status_code=status.HTTP_201_CREATED, dependencies=[manage])
def schedule_visit(data: VisitIn, ctx: Ctx = Depends(write_context)) -> VisitOut:
    notices.schedule_notice(
        ctx,
        serial=data.serial,
        visit_start=data.visit_start,
        visit_end=data.visit_end,
        expected_minutes=data.expected_minutes,
        technician=data.technician,
    )
    ctx.session.commit()
    visit = notices.get_all_visits(ctx.session, serial=data.serial)[-1]
    return visit_out(ctx.session, visit)


@router.get("/visits", dependencies=[read])
def list_visits(
    session: Session = Depends(db), serial: Annotated[str | None, Query()] = None
) -> list[VisitOut]:
    return [visit_out(session, v) for v in notices.get_all_visits(session, serial=serial)]


@router.get("/public/notices/{token}", dependencies=[public()])
def read_notice(token: str, request: Request, session: Session = Depends(db)) -> PublicNoticeOut:
    parts = server(request)
    try:
        visit = notices.open_link(session, signer=parts.signer, token=token, now=parts.clock.now())
    except LinkRefused as error:
        raise refused(error) from error
    machine = notices.machine_of(session, visit)
    return PublicNoticeOut(
        serial=machine.serial,
        customer=machine.site.customer.name,
        site=machine.site.name,
        visit_start=visit.visit_start,
        visit_end=visit.visit_end,
        expected_minutes=visit.expected_minutes,
    )


@router.post("/public/notices/{token}", dependencies=[public()])
def answer_notice(
    token: str, data: NoticeAnswerIn, request: Request, session: Session = Depends(db)
) -> dict[str, Any]:
    parts = server(request)
    try:
        visit = notices.open_link(session, signer=parts.signer, token=token, now=parts.clock.now())
    except LinkRefused as error:
        raise refused(error) from error
    ctx = _customer_ctx(request, session, f"notice:{visit.id}")
    notices.answer(ctx, visit=visit, choice=data.answer, note=data.note)
    session.commit()
    return {"answer": visit.answer, "answered_at": visit.answered_at}


# -- acceptances ----------------------------------------------------------------------------


@router.post("/machines/{serial}/acceptance-link", dependencies=[staff])
def acceptance_link(serial: str, request: Request, session: Session = Depends(db)) -> LinkOut:
    return LinkOut(link=acceptances.link_for(session, signer=server(request).signer, serial=serial))


@router.post(
    "/machines/{serial}/acceptances",
    status_code=status.HTTP_201_CREATED,
    dependencies=[staff],
)
def sign_on_site(
    serial: str, data: AcceptanceIn, request: Request, ctx: Ctx = Depends(write_context)
) -> AcceptanceOut:
    parts = server(request)
    acceptance = acceptances.sign(
        ctx,
        parts.library,
        serial=serial,
        signer_name=data.signer_name,
        png=acceptances.decode_data_url(data.signature),
        via="technician",
        links=_links(parts),
    )
    ctx.session.commit()
    return acceptance_out(ctx.session, acceptance)


@router.post(
    "/public/acceptances/{token}",
    status_code=status.HTTP_201_CREATED,
    dependencies=[public()],
)
def sign_by_link(
    token: str, data: AcceptanceIn, request: Request, session: Session = Depends(db)
) -> AcceptanceOut:
    parts = server(request)
    try:
        machine = acceptances.open_link(session, signer=parts.signer, token=token)
    except LinkRefused as error:
        raise refused(error) from error
    ctx = _customer_ctx(request, session, data.signer_name.strip()[:60] or "acceptance")
    acceptance = acceptances.sign(
        ctx,
        parts.library,
        serial=machine.serial,
        signer_name=data.signer_name,
        png=acceptances.decode_data_url(data.signature),
        via="link",
        links=_links(parts),
    )
    session.commit()
    return acceptance_out(session, acceptance)


@router.get("/acceptances", dependencies=[read])
def list_acceptances(
    session: Session = Depends(db), serial: Annotated[str | None, Query()] = None
) -> list[AcceptanceOut]:
    return [acceptance_out(session, a) for a in acceptances.get_all(session, serial=serial)]


@router.get("/acceptances/{acceptance_id}", dependencies=[read])
def read_acceptance(acceptance_id: RowId, session: Session = Depends(db)) -> AcceptanceOut:
    return acceptance_out(session, acceptances.get(session, acceptance_id=acceptance_id))


@router.get(
    "/acceptances/{acceptance_id}/certificate.pdf",
    dependencies=[read],
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def certificate_pdf(
    acceptance_id: RowId,
    session: Session = Depends(db),
    lang: Annotated[str, Query(pattern="^(zh-TW|en)$")] = "zh-TW",
) -> Response:
    acceptance = acceptances.get(session, acceptance_id=acceptance_id)
    customer = acceptances.machine_of(session, acceptance).site.customer.name
    try:
        body = render_pdf(acceptance, certificate_labels(lang), customer)
    except NoCjkFont as error:
        raise HTTPException(503, "no CJK font installed; print the certificate page") from error
    name = f"{acceptance.number}.pdf"
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# -- surveys --------------------------------------------------------------------------------


@router.get("/surveys", dependencies=[manage])
def list_surveys(
    request: Request,
    session: Session = Depends(db),
    serial: Annotated[str | None, Query()] = None,
) -> list[SurveyOut]:
    signer = server(request).signer
    return [survey_out(session, signer, s) for s in surveys.get_all(session, serial=serial)]


@router.post("/machines/{serial}/surveys", dependencies=[manage])
def open_survey(serial: str, request: Request, ctx: Ctx = Depends(write_context)) -> LinkOut:
    parts = server(request)
    link = surveys.open_survey(ctx, serial=serial, library=parts.library, links=_links(parts))
    ctx.session.commit()
    return LinkOut(link=link)


@router.get("/public/surveys/{token}", dependencies=[public()])
def read_survey(token: str, request: Request, session: Session = Depends(db)) -> PublicSurveyOut:
    parts = server(request)
    try:
        survey = surveys.open_link(session, signer=parts.signer, token=token, now=parts.clock.now())
    except LinkRefused as error:
        raise refused(error) from error
    machine = surveys.machine_of(session, survey)
    return PublicSurveyOut(
        serial=machine.serial,
        customer=machine.site.customer.name,
        round=survey.round,
        expires_at=survey.expires_at,
    )


@router.post("/public/surveys/{token}", dependencies=[public()])
def answer_survey(
    token: str, data: SurveyAnswerIn, request: Request, session: Session = Depends(db)
) -> dict[str, Any]:
    parts = server(request)
    try:
        survey = surveys.open_link(session, signer=parts.signer, token=token, now=parts.clock.now())
    except LinkRefused as error:
        raise refused(error) from error
    ctx = _customer_ctx(request, session, f"survey:{survey.id}")
    surveys.answer(ctx, parts.library, survey=survey, score=data.score, comment=data.comment)
    session.commit()
    return {"score": survey.score, "round": survey.round, "answered_at": survey.answered_at}


@router.post(
    "/surveys/loops/{instance_id}/follow-ups",
    status_code=status.HTTP_201_CREATED,
    dependencies=[staff],
)
def record_follow_up(
    instance_id: RowId, data: FollowUpIn, request: Request, ctx: Ctx = Depends(write_context)
) -> FollowUpOut:
    parts = server(request)
    record = surveys.record_staff_step(
        ctx,
        parts.library,
        instance_id=instance_id,
        kind=data.kind,
        note=data.note,
        owner=data.owner,
        links=_links(parts),
    )
    ctx.session.commit()
    return FollowUpOut.model_validate(record, from_attributes=True)


@router.get("/surveys/loops/{instance_id}/follow-ups", dependencies=[read])
def list_follow_ups(instance_id: RowId, session: Session = Depends(db)) -> list[FollowUpOut]:
    return [
        FollowUpOut.model_validate(r, from_attributes=True)
        for r in surveys.follow_ups(session, instance_id=instance_id)
    ]


@router.get("/surveys/stats", dependencies=[read])
def survey_stats(
    session: Session = Depends(db),
    serial: Annotated[list[str] | None, Query(description="a wave's machines")] = None,
) -> SatisfactionStats:
    return stats.for_serials(session, serials=serial)


@router.get("/surveys/stats/customers", dependencies=[read])
def survey_stats_per_customer(session: Session = Depends(db)) -> dict[str, SatisfactionStats]:
    return stats.per_customer(session)
