"""Pages a customer opens from a signed link: notice confirmation, acceptance, survey.

Nobody signs in here: the link is the permission. A forged link gets 403, a used or
expired one 410, each with a page that says so plainly in the visitor's language and
writes nothing. The forms still carry the CSRF token (bound to the visitor's cookie), so
another site cannot post an answer in the customer's name. The certificate is shown to
staff by its number and to the customer through its own lasting link.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from fleetup.api.access import READERS, GuardedRoute, public
from fleetup.api.deps import db, server
from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict, InvalidInput, NotFound
from fleetup.customers import acceptances, notices, surveys
from fleetup.customers.certificate import NoCjkFont, render_pdf
from fleetup.customers.links import LinkRefused, Links
from fleetup.customers.presenting import certificate_labels
from fleetup.web.guard import PageError, csrf_protected, signed_in
from fleetup.web.language import N_
from fleetup.web.params import page_row_id
from fleetup.web.rendering import Page, page

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
anyone = [public()]
readers = signed_in(*READERS)
# An id no row can have gets the page's own "not found", as its lookup words it.
AcceptanceId = Annotated[
    int,
    page_row_id(N_("Certificate not found"), N_("There is no acceptance with this number.")),
]

REFUSALS = {
    "invalid": (
        N_("This link is not valid"),
        N_(
            "The link is incomplete or was changed. Open it again from the message you "
            "received, or ask your contact at fleetup for a new one."
        ),
    ),
    "expired": (
        N_("This link has expired"),
        N_(
            "The link is no longer valid. Nothing was recorded. Ask your contact at fleetup "
            "for a new link."
        ),
    ),
    "used": (
        N_("This link was used already"),
        N_(
            "An answer was already given with this link, and each link can be used once. "
            "Nothing new was recorded. Thank you!"
        ),
    ),
}


def refusal(current: Page, error: LinkRefused) -> Response:
    title, message = REFUSALS[error.reason]
    return current.render(
        "customer_link_refused.html",
        status_code=error.status,
        title=current.gettext(title),
        message=current.gettext(message),
        reason=error.reason,
    )


def _customer_ctx(request: Request, session: Session, who: str) -> Ctx:
    return Ctx(session=session, actor=f"customer:{who}", clock=server(request).clock)


# -- notice ---------------------------------------------------------------------------------


def _notice_context(session: Session, visit: Any) -> dict[str, Any]:
    machine = notices.machine_of(session, visit)
    return {
        "visit": visit,
        "machine": machine,
        "start": notices.local(visit.visit_start, machine),
        "end": notices.local(visit.visit_end, machine),
    }


@router.get("/n/{token}", dependencies=anyone)
def notice_page(
    token: str, request: Request, current: Page = Depends(page), session: Session = Depends(db)
) -> Response:
    parts = server(request)
    try:
        visit = notices.open_link(session, signer=parts.signer, token=token, now=parts.clock.now())
    except LinkRefused as error:
        return refusal(current, error)
    return current.render("customer_notice.html", token=token, **_notice_context(session, visit))


@router.post("/n/{token}", dependencies=[*anyone, Depends(csrf_protected)])
def notice_answer(
    token: str,
    request: Request,
    answer: str = Form(""),
    note: str = Form(""),
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    parts = server(request)
    try:
        visit = notices.open_link(session, signer=parts.signer, token=token, now=parts.clock.now())
    except LinkRefused as error:
        return refusal(current, error)
    try:
        notices.answer(
            _customer_ctx(request, session, f"notice:{visit.id}"),
            visit=visit,
            choice=answer,
            note=note,
        )
    except (InvalidInput, Conflict) as error:
        raise PageError(
            400, N_("Choose an answer"), N_("Press one of the two buttons to answer.")
        ) from error
    session.commit()
    kind = "confirmed" if answer == "confirmed" else "another_date"
    return current.render("customer_thanks.html", kind=kind)


# -- acceptance by link ---------------------------------------------------------------------


@router.get("/a/{token}", dependencies=anyone)
def acceptance_page(
    token: str, request: Request, current: Page = Depends(page), session: Session = Depends(db)
) -> Response:
    try:
        machine = acceptances.open_link(session, signer=server(request).signer, token=token)
    except LinkRefused as error:
        return refusal(current, error)
    return current.render(
        "customer_sign.html", machine=machine, action=f"/a/{token}", problem="", signer_name=""
    )


@router.post("/a/{token}", dependencies=[*anyone, Depends(csrf_protected)])
def acceptance_sign(
    token: str,
    request: Request,
    signer_name: str = Form(""),
    signature: str = Form(""),
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    parts = server(request)
    try:
        machine = acceptances.open_link(session, signer=parts.signer, token=token)
    except LinkRefused as error:
        return refusal(current, error)
    ctx = _customer_ctx(request, session, signer_name.strip()[:60] or "acceptance")
    try:
        acceptance = acceptances.sign(
            ctx,
            parts.library,
            serial=machine.serial,
            signer_name=signer_name,
            png=acceptances.decode_data_url(signature),
            via="link",
            links=Links(parts.signer, parts.settings.effective_base_url),
        )
    except InvalidInput as error:
        session.rollback()
        return current.render(
            "customer_sign.html",
            status_code=422,
            machine=machine,
            action=f"/a/{token}",
            problem=error.problems[0].field if error.problems else "signature",
            signer_name=signer_name,
        )
    session.commit()
    link = acceptances.certificate_link(parts.signer, acceptance)
    return current.finish(RedirectResponse(link, status_code=303))


# -- certificate ----------------------------------------------------------------------------


def _certificate(current: Page, session: Session, acceptance: Any, pdf: str) -> Response:
    machine = acceptances.machine_of(session, acceptance)
    image = base64.b64encode(acceptances.signature_png(acceptance)).decode()
    return current.render(
        "customer_certificate.html",
        acceptance=acceptance,
        machine=machine,
        customer=machine.site.customer.name,
        signature_src="data:image/png;base64," + image,
        pdf=pdf,
    )


def _pdf(current: Page, session: Session, acceptance: Any) -> Response:
    customer = acceptances.machine_of(session, acceptance).site.customer.name
    try:
        body = render_pdf(acceptance, certificate_labels(current.language.code), customer)
    except NoCjkFont as error:
        raise PageError(
            503,
            N_("The PDF cannot be made here"),
            N_(
                "This server has no Chinese font for the PDF. Open the certificate page and "
                "print it (or save it as PDF from the print dialog)."
            ),
        ) from error
    return current.finish(
        Response(
            body,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{acceptance.number}.pdf"'},
        )
    )


def _staff_acceptance(session: Session, acceptance_id: int) -> Any:
    try:
        return acceptances.get(session, acceptance_id=acceptance_id)
    except NotFound as error:
        raise PageError(
            404, N_("Certificate not found"), N_("There is no acceptance with this number.")
        ) from error


@router.get("/acceptances/{acceptance_id}/certificate", dependencies=readers)
def staff_certificate(
    acceptance_id: AcceptanceId, current: Page = Depends(page), session: Session = Depends(db)
) -> Response:
    acceptance = _staff_acceptance(session, acceptance_id)
    return _certificate(
        current, session, acceptance, f"/acceptances/{acceptance_id}/certificate.pdf"
    )


@router.get("/acceptances/{acceptance_id}/certificate.pdf", dependencies=readers)
def staff_certificate_pdf(
    acceptance_id: AcceptanceId, current: Page = Depends(page), session: Session = Depends(db)
) -> Response:
    return _pdf(current, session, _staff_acceptance(session, acceptance_id))


@router.get("/c/{token}", dependencies=anyone)
def customer_certificate(
    token: str, request: Request, current: Page = Depends(page), session: Session = Depends(db)
) -> Response:
    try:
        acceptance = acceptances.open_certificate(
            session, signer=server(request).signer, token=token
        )
    except LinkRefused as error:
        return refusal(current, error)
    return _certificate(current, session, acceptance, f"/c/{token}/pdf")


@router.get("/c/{token}/pdf", dependencies=anyone)
def customer_certificate_pdf(
    token: str, request: Request, current: Page = Depends(page), session: Session = Depends(db)
) -> Response:
    try:
        acceptance = acceptances.open_certificate(
            session, signer=server(request).signer, token=token
        )
    except LinkRefused as error:
        return refusal(current, error)
    return _pdf(current, session, acceptance)


# -- survey ---------------------------------------------------------------------------------


@router.get("/s/{token}", dependencies=anyone)
def survey_page(
    token: str, request: Request, current: Page = Depends(page), session: Session = Depends(db)
) -> Response:
    parts = server(request)
    try:
        survey = surveys.open_link(session, signer=parts.signer, token=token, now=parts.clock.now())
    except LinkRefused as error:
        return refusal(current, error)
    machine = surveys.machine_of(session, survey)
    return current.render(
        "customer_survey.html", survey=survey, machine=machine, token=token, problem=False
    )


@router.post("/s/{token}", dependencies=[*anyone, Depends(csrf_protected)])
def survey_answer(
    token: str,
    request: Request,
    score: str = Form(""),
    comment: str = Form(""),
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    parts = server(request)
    try:
        survey = surveys.open_link(session, signer=parts.signer, token=token, now=parts.clock.now())
    except LinkRefused as error:
        return refusal(current, error)
    machine = surveys.machine_of(session, survey)
    if not score.isdigit() or not 0 <= int(score) <= 10:
        return current.render(
            "customer_survey.html",
            status_code=422,
            survey=survey,
            machine=machine,
            token=token,
            problem=True,
        )
    ctx = _customer_ctx(request, session, f"survey:{survey.id}")
    surveys.answer(ctx, parts.library, survey=survey, score=int(score), comment=comment)
    session.commit()
    return current.render("customer_thanks.html", kind="survey")
