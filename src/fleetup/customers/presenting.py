"""The customer side's rows as the API and the pages show them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from fleetup.core.i18n import gettext_for
from fleetup.core.security import Signer
from fleetup.customers import surveys
from fleetup.customers.models import Acceptance, SiteVisit, Survey
from fleetup.customers.schemas import AcceptanceOut, SurveyOut, VisitOut
from fleetup.fleet.models import Machine
from fleetup.upgrades import service as upgrades


def _N(message: str) -> str:
    return message


CERTIFICATE_WORDS = {
    "title": _N("Upgrade acceptance certificate"),
    "number": _N("Certificate number"),
    "customer": _N("Customer"),
    "signed_at": _N("Signed at"),
    "serial": _N("Serial"),
    "model": _N("Model"),
    "version": _N("Program version"),
    "tests": _N("Function test"),
    "passed": _N("Passed"),
    "not_recorded": _N("Not recorded"),
    "signer": _N("Signed by"),
    "statement": _N(
        "The customer confirms that the machines above were upgraded to the new platform, "
        "that their functions were tested with the customer, and accepts the upgrade."
    ),
}


def certificate_labels(lang: str) -> dict[str, str]:
    translate = gettext_for(lang)
    return {key: translate(message) for key, message in CERTIFICATE_WORDS.items()}


def visit_out(session: Session, visit: SiteVisit) -> VisitOut:
    machine = session.get_one(Machine, visit.machine_id)
    return VisitOut(
        id=visit.id,
        serial=machine.serial,
        technician=visit.technician,
        visit_start=visit.visit_start,
        visit_end=visit.visit_end,
        expected_minutes=visit.expected_minutes,
        status=visit.status,
        notice_due_at=visit.notice_due_at,
        notice_sent_at=visit.notice_sent_at,
        reminder_due_at=visit.reminder_due_at,
        reminder_sent_at=visit.reminder_sent_at,
        answer=visit.answer,
        answer_note=visit.answer_note,
        answered_at=visit.answered_at,
    )


def acceptance_out(session: Session, acceptance: Acceptance) -> AcceptanceOut:
    machine = session.get_one(Machine, acceptance.machine_id)
    return AcceptanceOut(
        id=acceptance.id,
        number=acceptance.number,
        serial=machine.serial,
        signer_name=acceptance.signer_name,
        signed_at=acceptance.signed_at,
        signed_via=acceptance.signed_via,
        machines=acceptance.machines,
        signature_sha256=acceptance.signature_sha256,
        signature_bytes=acceptance.signature_bytes,
        certificate=f"/acceptances/{acceptance.id}/certificate",
        pdf=f"/api/v1/acceptances/{acceptance.id}/certificate.pdf",
    )


def survey_out(session: Session, signer: Signer, survey: Survey) -> SurveyOut:
    machine = session.get_one(Machine, survey.machine_id)
    loop = upgrades.get(session, instance_id=survey.instance_id)
    return SurveyOut(
        id=survey.id,
        serial=machine.serial,
        instance_id=survey.instance_id,
        loop_status=loop.status,
        loop_node=loop.current_node,
        round=survey.round,
        status=survey.status,
        score=survey.score,
        comment=survey.comment,
        opened_at=survey.opened_at,
        expires_at=survey.expires_at,
        answered_at=survey.answered_at,
        link=surveys.survey_link(signer, survey) if survey.status == "open" else None,
    )
