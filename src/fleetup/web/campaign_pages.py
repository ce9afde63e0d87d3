"""The manager's campaign pages: the dashboard (Gantt, wave board, gates), the report, exports.

The dashboard is drawn on the server: the Gantt of chart 1's phases and activities (planned
weeks next to what happened, up to the server's "now"), the wave board with a manager's gate
decisions, the recent gate events, the fleet by state, the shutdown's blockers and the
report's figures. Its live part polls ``/campaigns/{id}/live?since=KEY`` every few seconds;
the server answers 204 while the key (the waves' statuses and counts, the last gate event)
is unchanged, so an idle dashboard costs a handful of small queries per poll and never
replaces a form someone is filling in. Decisions are plain form POSTs that call
``fleetup.campaigns.waves`` and come back with a signed one-time message; so are a manager's
changes to the plan: what a wave takes, its start and its gate (the API's ``PATCH
.../waves/{code}``), and an activity's owner and status (``PATCH .../activities/{code}``).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from fleetup.api.access import READERS, GuardedRoute
from fleetup.api.deps import db, server
from fleetup.campaigns import presenting, report, service, shutdown, waves
from fleetup.campaigns.gates import GateRule
from fleetup.campaigns.report import CampaignReport
from fleetup.campaigns.schemas import (
    ActivityUpdate,
    CampaignIn,
    CampaignOut,
    MemberOut,
    Selection,
    ShutdownIn,
    WaveOut,
    WaveUpdate,
)
from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from fleetup.core.i18n import ngettext_for
from fleetup.core.security import LinkInvalid, Role
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import MachineFilter
from fleetup.releases import service as releases
from fleetup.web.guard import PageError, csrf_protected, signed_in
from fleetup.web.language import N_, MachineState
from fleetup.web.params import page_row_id
from fleetup.web.rendering import Page, page

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
readers = signed_in(*READERS)
managers = signed_in(Role.manager)
# An id no row can have gets the page's own "not found", as its lookup words it.
CampaignId = Annotated[
    int,
    page_row_id(
        N_("Campaign not found"),
        N_("There is no campaign %(id)s. The campaign page lists the latest one."),
        "id",
    ),
]
POLL_SECONDS = 3
WEEKS = 16
RECENT_EVENTS = 12
FIRST_ITEMS = 5
FLASH_MAX_AGE_S = 300
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

LABELS: dict[str, str] = {
    # campaign, wave and activity statuses
    "draft": N_("Draft"), "planned": N_("Planned"), "running": N_("Running"),
    "paused": N_("Paused"), "completed": N_("Completed"), "aborted": N_("Aborted"),
    "todo": N_("To do"), "doing": N_("In progress"), "done": N_("Done"),
    # gate states
    "closed": N_("Closed"), "open": N_("Open"), "awaiting_approval": N_("Awaiting approval"),
    # member statuses
    "pending": N_("Pending"), "scheduled": N_("Scheduled"), "succeeded": N_("Succeeded"),
    "failed": N_("Failed"), "held": N_("Held"), "cancelled": N_("Cancelled"),
    "unplanned": N_("Unplanned"),
    # gate event kinds
    "started": N_("Started"), "opened": N_("Gate opened"), "approved": N_("Approved"),
    "resumed": N_("Resumed"), "retried": N_("Retried"), "joined": N_("Machines joined"),
}  # fmt: skip
ACTIONS: dict[str, str] = {
    "approve": N_("Approve"), "pause": N_("Pause"), "resume": N_("Resume"),
    "abort": N_("Abort"), "retry": N_("Retry failed"),
}  # fmt: skip
DONE: dict[str, str] = {
    "approve": N_("Wave %(wave)s: the gate is open by decision."),
    "pause": N_("Wave %(wave)s is paused; its queued deployments are held."),
    "resume": N_("Wave %(wave)s runs again."),
    "abort": N_("Wave %(wave)s is aborted."),
    "retry": N_("Wave %(wave)s: the failed machines are deployed again."),
    "plan": N_("Wave %(wave)s: the plan is saved."),
    "activity": N_("Activity %(wave)s is saved."),
    "join": N_("Wave %(wave)s: the machines joined."),
    "created": N_("The campaign is made from chart 1 as a draft: size its waves, then start it."),
    "started": N_("The campaign is running: each wave starts at its planned time."),
    "shutdown": N_("The old system's shutdown is recorded."),
}
REFUSED: dict[str, str] = {
    "started": N_("The campaign did not start."),
    "shutdown": N_("The shutdown was not recorded."),
    "plan": N_("Wave %(wave)s: the plan was not changed."),
    "join": N_("Wave %(wave)s: no machine joined."),
    "activity": N_("Activity %(wave)s was not changed."),
}
SELECTION_KINDS: dict[str, str] = {
    "count": N_("A number of machines"),
    "percent": N_("A share of the fleet"),
    "filter": N_("Machines of a customer, site or model"),
    "rest": N_("Every machine no other wave takes"),
}
ADVANCES: dict[str, str] = {
    "auto": N_("the next wave may start"),
    "approval": N_("a manager approves the next wave"),
}
# The plan form's fields, by where their problems point in the API's body.
PLAN_FIELDS: dict[tuple[str, ...], str] = {
    ("selection",): "kind",
    ("selection", "kind"): "kind",
    ("selection", "count"): "count",
    ("selection", "percent"): "percent",
    ("selection", "customer"): "customer",
    ("selection", "site"): "site",
    ("selection", "model"): "model",
    ("planned_start",): "planned_start",
    ("gate",): "error_count",
    ("gate", "success_share"): "success_percent",
    ("gate", "advance"): "advance",
    ("gate", "error_count"): "error_count",
    ("gate", "error_share"): "error_percent",
}
BAR_PARTS = ("succeeded", "failed", "running", "scheduled", "held")
MEMBER_COLUMNS = (
    N_("Wave"), N_("Serial"), N_("Customer"), N_("Site"), N_("Model"), N_("Status"),
    N_("Attempts"), N_("Current step"), N_("Joined"), N_("Finished"),
)  # fmt: skip


@dataclass(frozen=True)
class Bar:
    """A span on the Gantt in weeks from the campaign's start (0-16)."""

    start: float
    width: float


@dataclass(frozen=True)
class GanttRow:
    code: str
    title: str
    is_phase: bool
    status: str
    first_week: int
    last_week: int
    planned: Bar
    actual: Bar | None
    actual_start: datetime | None
    actual_end: datetime | None
    owner: str = ""
    # A manager may set its owner and status here (phases follow their activities; the
    # waves' activities and the shutdown follow the waves and the shutdown gate).
    editable: bool = False


def labeller(current: Page) -> Callable[[str], str]:
    """Translates a status, gate state or event kind for the page's language."""

    def label(key: str) -> str:
        return current.gettext(LABELS.get(key, key))

    return label


def _title(item: Any, lang: str) -> str:
    return str(item.title_zh_tw if lang == "zh-TW" else item.title_en)


def _week_of(campaign: CampaignOut, moment: datetime) -> float:
    origin = campaign.phases[0].planned_start if campaign.phases else moment
    return (moment - origin) / timedelta(weeks=1)


def _clamp(value: float) -> float:
    return max(0.0, min(float(WEEKS), value))


def _actual(
    campaign: CampaignOut, start: datetime | None, end: datetime | None, now: datetime
) -> Bar | None:
    if start is None:
        return None
    first = _clamp(_week_of(campaign, start))
    last = _clamp(_week_of(campaign, end or now))
    return Bar(round(first, 3), round(max(last - first, 0.05), 3))


def gantt(campaign: CampaignOut, now: datetime, lang: str) -> list[GanttRow]:
    """Each phase followed by its activities, planned and actual bars in week units."""
    following = {wave.code for wave in campaign.waves} | {"E4"}
    rows = []
    for phase in campaign.phases:
        done = phase.actual_end is not None
        rows.append(
            GanttRow(
                phase.code, _title(phase, lang), True,
                "done" if done else ("doing" if phase.actual_start else "todo"),
                phase.first_week, phase.last_week,
                Bar(phase.first_week - 1, phase.last_week - phase.first_week + 1),
                _actual(campaign, phase.actual_start, phase.actual_end, now),
                phase.actual_start, phase.actual_end,
            )
        )  # fmt: skip
        for activity in (a for a in campaign.activities if a.phase == phase.code):
            rows.append(
                GanttRow(
                    activity.code, _title(activity, lang), False, activity.status,
                    activity.first_week, activity.last_week,
                    Bar(activity.first_week - 1, activity.last_week - activity.first_week + 1),
                    _actual(campaign, activity.actual_start, activity.actual_end, now),
                    activity.actual_start, activity.actual_end,
                    activity.owner, activity.code not in following,
                )
            )  # fmt: skip
    return rows


def wave_actions(wave: WaveOut) -> list[str]:
    """The decisions a manager may take on ``wave`` now (the services check again)."""
    found = []
    if wave.status != "planned" and wave.gate_state != "open":
        found.append("approve")
    if wave.status == "running":
        found.append("pause")
    if wave.status == "paused":
        found.append("resume")
    if wave.status in waves.OPEN_WAVE:
        found.append("abort")
    if wave.status in ("running", "paused", "completed") and (
        wave.counts.failed + wave.counts.unplanned
    ):
        found.append("retry")
    return found


def may_join(wave: WaveOut) -> bool:
    """Whether machines may still join ``wave`` (a running one deploys to them at once)."""
    return wave.status in waves.OPEN_WAVE


def plan_editable(wave: WaveOut) -> bool:
    """Whether a manager may still change ``wave``'s plan: its gate until it finishes, what it
    takes and its start while it is planned."""
    return wave.status not in ("completed", "aborted")


def describer(current: Page, zone: str) -> dict[str, Callable[[WaveOut], Any]]:
    """``takes`` and ``gate_rule``: a wave's selection and gate in words, for the page."""
    gettext = current.gettext
    ngettext = ngettext_for(current.language.code)
    place = ZoneInfo(zone)

    def takes(wave: WaveOut) -> str:
        chosen = wave.selection
        kind = chosen.get("kind")
        if kind == "count":
            count = int(chosen.get("count", 0))
            return ngettext("%(count)s machine", "%(count)s machines", count) % {"count": count}
        if kind == "percent":
            return gettext("%(percent)s %% of the fleet") % {"percent": f"{chosen['percent']:g}"}
        if kind == "filter":
            parts = [
                gettext(label) % {"value": chosen[name]}
                for name, label in (
                    ("customer", N_("customer %(value)s")),
                    ("site", N_("site %(value)s")),
                    ("model", N_("model %(value)s")),
                )
                if chosen.get(name)
            ]
            return gettext("the machines of %(which)s") % {"which": ", ".join(parts)}
        if kind == "rest":
            if chosen.get("planned"):
                return gettext("every machine no other wave takes (%(count)s planned)") % {
                    "count": chosen["planned"]
                }
            return gettext("every machine no other wave takes")
        return str(kind)

    def gate_rule(wave: WaveOut) -> str:
        rule = GateRule.model_validate(wave.gate)
        limits = []
        if rule.error_count is not None:
            count = rule.error_count
            limits.append(
                ngettext("%(count)s failure", "%(count)s failures", count) % {"count": count}
            )
        if rule.error_share is not None:
            limits.append(
                gettext("%(percent)s %% failed") % {"percent": f"{100 * rule.error_share:g}"}
            )
        return gettext(
            "Opens at %(percent)s %% succeeded, then %(advance)s; pauses at %(limits)s."
        ) % {
            "percent": f"{100 * rule.success_share:g}",
            "advance": gettext(ADVANCES[rule.advance]),
            "limits": gettext(" or ").join(limits),
        }

    def start_value(wave: WaveOut) -> str:
        return wave.planned_start.astimezone(place).strftime("%Y-%m-%dT%H:%M")

    return {
        "takes": takes,
        "gate_rule": gate_rule,
        "start_value": start_value,
        "rule": lambda wave: GateRule.model_validate(wave.gate),
    }


def bar_shares(wave: WaveOut) -> list[tuple[str, float, int]]:
    """The progress bar's parts: status, share of the wave in percent, count."""
    total = wave.counts.total - wave.counts.cancelled
    if not total:
        return []
    values = wave.counts.model_dump()
    return [(name, round(100 * values[name] / total, 2), values[name]) for name in BAR_PARTS]


def campaign_or_404(session: Session, campaign_id: int) -> Any:
    try:
        return service.get(session, campaign_id=campaign_id)
    except NotFound as error:
        raise PageError(
            404,
            N_("Campaign not found"),
            N_("There is no campaign %(id)s. The campaign page lists the latest one."),
            id=str(campaign_id),
        ) from error


def _fleet_counts(session: Session) -> list[tuple[MachineState, int]]:
    return [
        (state, fleet.get_all_machines(session, where=MachineFilter(state=state), limit=1).total)
        for state in MachineState
    ]


def _live_key(wave_rows: Sequence[WaveOut], last_event: int) -> str:
    seed = repr([(w.code, w.status, w.gate_state, w.counts.model_dump()) for w in wave_rows])
    return hashlib.sha256(f"{seed}|{last_event}".encode()).hexdigest()[:16]


def _when(zone: str) -> Callable[[datetime | None], str]:
    place = ZoneInfo(zone)

    def when(moment: datetime | None) -> str:
        return moment.astimezone(place).strftime("%Y-%m-%d %H:%M") if moment else "—"

    return when


def live_context(session: Session, campaign: Any, current: Page) -> dict[str, Any]:
    """What ``_campaign_live.html`` needs: the wave board, gate events, fleet counts."""
    campaign_id: int = campaign.id
    wave_rows = [
        presenting.wave_out(session, w) for w in waves.waves_of(session, campaign_id=campaign_id)
    ]
    events = presenting.gate_events_out(session, campaign_id)
    last_event = len(events)
    principal = current.principal
    return {
        "campaign_id": campaign_id,
        "waves": wave_rows,
        "events": list(reversed(events[-RECENT_EVENTS:])),
        "fleet_counts": _fleet_counts(session),
        "since": _live_key(wave_rows, last_event),
        "poll_seconds": POLL_SECONDS,
        "may_decide": principal is not None and principal.role in {Role.admin, Role.manager},
        "wave_actions": wave_actions,
        "bar_shares": bar_shares,
        "label": labeller(current),
        "action_label": lambda key: current.gettext(ACTIONS[key]),
        "title": lambda item: _title(item, current.language.code),
        "when": _when(campaign.timezone),
        "zone": campaign.timezone,
        "plan_editable": plan_editable,
        "may_join": may_join,
        "selection_kinds": SELECTION_KINDS,
        "advances": ADVANCES,
        **describer(current, campaign.timezone),
    }


def gantt_context(campaign: CampaignOut, now: datetime, current: Page) -> dict[str, Any]:
    """What ``_campaign_gantt.html`` needs: the rows, the week of ``now``, and the key of
    what it shows (the Gantt's poll gets 204 while the key is the same)."""
    rows = gantt(campaign, now, current.language.code)
    now_week = _clamp(_week_of(campaign, now))
    seed = repr([(row.code, row.status, row.actual) for row in rows])
    return {
        "campaign_id": campaign.id,
        "now": now,
        "now_week": now_week,
        "weeks": WEEKS,
        "rows": rows,
        "gantt_since": hashlib.sha256(f"{seed}|{now_week:.3f}".encode()).hexdigest()[:16],
        "poll_seconds": POLL_SECONDS,
        "label": labeller(current),
        "when": _when(campaign.timezone),
        "may_edit": current.principal is not None
        and current.principal.role in {Role.admin, Role.manager},
        "table_open": False,
    }


def _flash(current: Page) -> dict[str, str] | None:
    token = current.request.query_params.get("flash", "")
    if not token:
        return None
    try:
        value = current.server.signer.unsign("campaign-flash", token, max_age_s=FLASH_MAX_AGE_S)
    except LinkInvalid:
        return None
    if not isinstance(value, dict):
        return None
    kind, wave, action = value.get("k", ""), value.get("w", ""), value.get("a", "")
    if kind == "done" and action in DONE:
        detail = ""
        if "j" in value:
            detail = ", ".join(str(serial) for serial in value["j"])
        elif "n" in value:
            count = int(value["n"])
            ngettext = ngettext_for(current.language.code)
            detail = ngettext(
                "Started now, it would take %(count)s machine.",
                "Started now, it would take %(count)s machines.",
                count,
            ) % {"count": count}
        return {
            "kind": "done",
            "text": current.gettext(DONE[action]) % {"wave": wave},
            "detail": detail,
            "action": action,
        }
    if kind == "error":
        refused = REFUSED.get(action, N_("Wave %(wave)s: the decision was refused."))
        heading = current.gettext(refused) % {"wave": wave}
        return {
            "kind": "error",
            "text": heading,
            "detail": str(value.get("m", "")),
            "action": action,
        }
    return None


def _manager_ctx(current: Page, session: Session) -> Ctx:
    """The context of a manager's form: their session, their name, the server's clock."""
    assert current.principal is not None  # the forms' rule admits only signed-in managers
    return Ctx(session=session, actor=current.principal.actor, clock=current.server.clock)


def _back(current: Page, campaign_id: int, flash: dict[str, Any], anchor: str = "") -> Response:
    """Back to the dashboard (at ``anchor``) with ``flash`` as its signed one-time message."""
    token = current.server.signer.sign("campaign-flash", flash)
    target = f"/campaigns/{campaign_id}?flash={token}" + (f"#{anchor}" if anchor else "")
    return current.finish(RedirectResponse(target, status_code=303))


def _may_manage(current: Page) -> bool:
    principal = current.principal
    return principal is not None and principal.role in {Role.admin, Role.manager}


def _next_monday(today: datetime) -> str:
    return (today.date() + timedelta(days=(7 - today.weekday()) % 7 or 7)).isoformat()


def _new_campaign(
    current: Page,
    session: Session,
    *,
    values: dict[str, str] | None = None,
    problems: Sequence[FieldProblem] = (),
    status_code: int = 200,
) -> Response:
    """The page of a campaign to make: the form for a manager, the commands for anyone."""
    versions = [release.version for release in reversed(releases.get_all(session))]
    shown = {
        "name": "",
        "release_version": versions[0] if versions else "",
        "starts_on": _next_monday(current.server.clock.now()),
        "timezone": "Asia/Taipei",
    } | (values or {})
    return current.render(
        "campaign_none.html",
        status_code=status_code,
        nav="campaigns",
        may_create=_may_manage(current),
        any_campaign=bool(service.get_all(session)),
        versions=versions,
        values=shown,
        problems=problems,
    )


@router.get("/campaigns", dependencies=readers)
def campaigns_home(current: Page = Depends(page), session: Session = Depends(db)) -> Response:
    found = service.get_all(session)
    if found:
        return current.finish(RedirectResponse(f"/campaigns/{found[-1].id}", status_code=303))
    return _new_campaign(current, session)


@router.get("/campaigns/new", dependencies=[*managers])
def campaign_form(current: Page = Depends(page), session: Session = Depends(db)) -> Response:
    """The form of a new campaign from chart 1 (the latest one stays at ``/campaigns``)."""
    return _new_campaign(current, session)


@router.post("/campaigns", dependencies=[*managers, Depends(csrf_protected)])
def create_campaign(
    request: Request,
    name: str = Form(""),
    release_version: str = Form(""),
    starts_on: str = Form(""),
    timezone: str = Form(""),
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    """Make a campaign from chart 1 in draft, as ``POST /api/v1/campaigns`` does; a bad field
    comes back on the form, named, and nothing is made."""
    parts = server(request)
    values = {
        "name": name.strip(),
        "release_version": release_version.strip(),
        "starts_on": starts_on.strip(),
        "timezone": timezone.strip() or "Asia/Taipei",
    }
    ctx = _manager_ctx(current, session)
    try:
        try:
            data = CampaignIn.model_validate(values)
        except ValidationError as error:
            raise InvalidInput.of("the campaign is not valid", error) from error
        made = service.create_from_template(ctx, parts.library, data)
        session.commit()
    except NotFound as error:
        session.rollback()
        problem = FieldProblem("release_version", str(error))
        return _new_campaign(current, session, values=values, problems=[problem], status_code=422)
    except InvalidInput as error:
        session.rollback()
        return _new_campaign(
            current, session, values=values, problems=error.problems, status_code=422
        )
    return _back(current, made.id, {"k": "done", "w": "", "a": "created"})


@router.post("/campaigns/{campaign_id}/start", dependencies=[*managers, Depends(csrf_protected)])
def start_campaign(
    campaign_id: CampaignId,
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    """Set a draft campaign running, as ``POST /api/v1/campaigns/{id}/start`` does."""
    campaign_or_404(session, campaign_id)
    ctx = _manager_ctx(current, session)
    flash: dict[str, str] = {"k": "done", "w": "", "a": "started"}
    try:
        service.start(ctx, campaign_id=campaign_id)
        session.commit()
    except Conflict as error:
        session.rollback()
        flash = {"k": "error", "w": "", "a": "started", "m": str(error)}
    return _back(current, campaign_id, flash)


@router.get("/campaigns/{campaign_id}", dependencies=readers)
def dashboard(
    campaign_id: CampaignId,
    request: Request,
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    parts = server(request)
    found = campaign_or_404(session, campaign_id)
    out = presenting.campaign_out(session, found)
    now = parts.clock.now()
    built = report.build(session, parts.library, campaign_id=campaign_id)
    members = {
        w.code: presenting.members_out(session, w)
        for w in waves.waves_of(session, campaign_id=campaign_id)
    }
    flash = _flash(current)
    context = live_context(session, found, current) | gantt_context(out, now, current)
    # After an activity's change, the table it was made in is open again.
    context["table_open"] = flash is not None and flash.get("action") == "activity"
    return current.render(
        "campaign.html",
        nav="campaigns",
        campaign=out,
        members=members,
        blockers=shutdown.blockers(session, campaign_id=campaign_id),
        first_items=FIRST_ITEMS,
        report=built,
        step_scale=_step_scale(built),
        flash=flash,
        # Both parts name the campaign, the poll, the labels and the time zone alike.
        **context,
    )


@router.get("/campaigns/{campaign_id}/live", dependencies=readers)
def live(
    campaign_id: CampaignId,
    since: str = "",
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    context = live_context(session, campaign_or_404(session, campaign_id), current)
    if context["since"] == since:
        return current.finish(Response(status_code=204))
    return current.render("_campaign_live.html", **context)


@router.get("/campaigns/{campaign_id}/gantt", dependencies=readers)
def gantt_part(
    campaign_id: CampaignId,
    request: Request,
    since: str = "",
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    """The Gantt alone, for the dashboard's poll; 204 while it would show the same."""
    out = presenting.campaign_out(session, campaign_or_404(session, campaign_id))
    context = gantt_context(out, server(request).clock.now(), current)
    if context["gantt_since"] == since:
        return current.finish(Response(status_code=204))
    return current.render("_campaign_gantt.html", **context)


@router.post(
    "/campaigns/{campaign_id}/waves/{code}/decide",
    dependencies=[*managers, Depends(csrf_protected)],
)
def decide(
    campaign_id: CampaignId,
    code: str,
    request: Request,
    action: str = Form(""),
    reason: str = Form(""),
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    parts = server(request)
    campaign_or_404(session, campaign_id)
    ctx = _manager_ctx(current, session)
    simple: dict[str, Callable[..., Any]] = {
        "approve": waves.approve,
        "pause": waves.pause,
        "resume": waves.resume,
        "abort": waves.abort,
    }
    flash: dict[str, str] = {"k": "done", "w": code, "a": action}
    try:
        if action == "retry":
            waves.retry(
                ctx, parts.library, campaign_id=campaign_id, code=code, reason=reason,
                base_url=parts.settings.effective_base_url,
            )  # fmt: skip
        elif action in simple:
            simple[action](ctx, campaign_id=campaign_id, code=code, reason=reason)
        else:
            raise InvalidInput(f"unknown decision {action!r}", [])
        session.commit()
    except (Conflict, InvalidInput, NotFound) as error:
        session.rollback()
        flash = {"k": "error", "w": code, "a": action, "m": str(error)}
    return _back(current, campaign_id, flash, f"wave-{code}")


def _number(form: dict[str, str], name: str, *, scale: float = 1.0) -> float | None:
    """A number the plan form gave in ``name`` (None when left empty), divided by ``scale``.

    Raises:
        InvalidInput: the field holds something else than a number.
    """
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        return float(text) / scale
    except ValueError as error:
        raise InvalidInput(
            "the plan is not valid", [FieldProblem(name, "is not a number", value=text)]
        ) from error


def plan_update(form: dict[str, str], zone: str) -> WaveUpdate:
    """The API's ``WaveUpdate`` from the plan form's fields.

    Shares are given in percent; the planned start is a local time in the campaign's zone.
    What the wave takes and its start are sent only when the form has them (a wave that has
    started shows its gate alone).

    Raises:
        InvalidInput: a field is not valid; the problems name the form's fields.
    """
    body: dict[str, Any] = {}
    if form.get("kind"):
        selection: dict[str, Any] = {"kind": form["kind"]}
        wanted = {
            "count": ("count",),
            "percent": ("percent",),
            "filter": ("customer", "site", "model"),
        }
        for name in wanted.get(form["kind"], ()):
            value: Any = _number(form, name) if name in ("count", "percent") else form.get(name, "")
            if isinstance(value, str):
                value = value.strip()
            if value not in (None, ""):
                selection[name] = int(value) if name == "count" and value == int(value) else value
        body["selection"] = selection
    start = form.get("planned_start", "").strip()
    if start:
        try:
            moment = datetime.fromisoformat(start)
        except ValueError as error:
            problem = FieldProblem("planned_start", "is not a date and time", value=start)
            raise InvalidInput("the plan is not valid", [problem]) from error
        body["planned_start"] = (
            moment.replace(tzinfo=ZoneInfo(zone)) if moment.tzinfo is None else moment
        )
    success = _number(form, "success_percent", scale=100)
    if success is not None:
        body["gate"] = {
            "success_share": success,
            "advance": form.get("advance") or "auto",
            "error_count": _number(form, "error_count"),
            "error_share": _number(form, "error_percent", scale=100),
        }
        count = body["gate"]["error_count"]
        if count is not None and count == int(count):
            body["gate"]["error_count"] = int(count)
    try:
        return WaveUpdate.model_validate(body)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            where = tuple(str(part) for part in item["loc"] if not str(part).startswith("function"))
            field = PLAN_FIELDS.get(where) or PLAN_FIELDS.get(where[:1], "plan")
            problems.append(FieldProblem(field, item["msg"]))
        raise InvalidInput("the plan is not valid", problems) from error


def _refusal(error: Conflict | InvalidInput | NotFound) -> str:
    """What the flash says of a refused change: the error, and each field it names."""
    problems = getattr(error, "problems", None) or []
    if not problems:
        return str(error)
    return "; ".join(f"{problem.field}: {problem.message}" for problem in problems)


@router.post(
    "/campaigns/{campaign_id}/waves/{code}/plan",
    dependencies=[*managers, Depends(csrf_protected)],
)
def plan_wave(
    campaign_id: CampaignId,
    code: str,
    kind: str = Form(""),
    count: str = Form(""),
    percent: str = Form(""),
    customer: str = Form(""),
    site: str = Form(""),
    model: str = Form(""),
    planned_start: str = Form(""),
    success_percent: str = Form(""),
    advance: str = Form(""),
    error_count: str = Form(""),
    error_percent: str = Form(""),
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    """Change what a wave takes, its start and its gate, as ``PATCH .../waves/{code}`` does."""
    campaign = campaign_or_404(session, campaign_id)
    form = {
        "kind": kind, "count": count, "percent": percent, "customer": customer, "site": site,
        "model": model, "planned_start": planned_start, "success_percent": success_percent,
        "advance": advance, "error_count": error_count, "error_percent": error_percent,
    }  # fmt: skip
    ctx = _manager_ctx(current, session)
    flash: dict[str, Any] = {"k": "done", "w": code, "a": "plan"}
    try:
        update = plan_update(form, campaign.timezone)
        wave = waves.update_wave(ctx, campaign_id=campaign_id, code=code, data=update)
        if wave.status == "planned":
            chosen = Selection.model_validate(wave.selection)
            flash["n"] = len(waves.choose(session, campaign_id=campaign_id, selection=chosen))
        session.commit()
    except (Conflict, InvalidInput, NotFound) as error:
        session.rollback()
        flash = {"k": "error", "w": code, "a": "plan", "m": _refusal(error)}
    return _back(current, campaign_id, flash, f"wave-{code}")


@router.post(
    "/campaigns/{campaign_id}/waves/{code}/members",
    dependencies=[*managers, Depends(csrf_protected)],
)
def join_wave(
    campaign_id: CampaignId,
    code: str,
    request: Request,
    serials: str = Form(""),
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    """Let machines join a wave still open, as ``POST .../waves/{code}/members`` does: the
    serials are separated by commas, spaces or lines."""
    parts = server(request)
    campaign_or_404(session, campaign_id)
    ctx = _manager_ctx(current, session)
    named = [serial for serial in serials.replace(",", " ").split() if serial]
    flash: dict[str, Any] = {"k": "done", "w": code, "a": "join", "j": named}
    try:
        if not named:
            problem = FieldProblem("serials", "name at least one machine")
            raise InvalidInput("no machine was named", [problem])
        waves.add_members(
            ctx, parts.library, campaign_id=campaign_id, code=code, serials=named,
            base_url=parts.settings.effective_base_url,
        )  # fmt: skip
        session.commit()
    except (Conflict, InvalidInput, NotFound) as error:
        session.rollback()
        flash = {"k": "error", "w": code, "a": "join", "m": _refusal(error)}
    return _back(current, campaign_id, flash, f"wave-{code}")


@router.post(
    "/campaigns/{campaign_id}/activities/{code}",
    dependencies=[*managers, Depends(csrf_protected)],
)
def track_activity(
    campaign_id: CampaignId,
    code: str,
    owner: str = Form(""),
    status: str = Form(""),
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    """Set an activity's owner and status, as ``PATCH .../activities/{code}`` does."""
    campaign_or_404(session, campaign_id)
    ctx = _manager_ctx(current, session)
    flash: dict[str, str] = {"k": "done", "w": code, "a": "activity"}
    try:
        try:
            data = ActivityUpdate.model_validate({"owner": owner.strip(), "status": status})
        except ValidationError as error:
            raise InvalidInput.of("the activity is not valid", error) from error
        service.update_activity(ctx, campaign_id=campaign_id, code=code, data=data)
        session.commit()
    except (Conflict, InvalidInput, NotFound) as error:
        session.rollback()
        flash = {"k": "error", "w": code, "a": "activity", "m": _refusal(error)}
    return _back(current, campaign_id, flash, f"activity-{code}")


@router.post("/campaigns/{campaign_id}/shutdown", dependencies=[*managers, Depends(csrf_protected)])
def record_shutdown(
    campaign_id: CampaignId,
    reason: str = Form(""),
    archive: str = Form(""),
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    """Record the old system's shutdown (E4), as ``POST .../shutdown`` does: refused while
    anything blocks it, and with a reason and the archive's place."""
    campaign_or_404(session, campaign_id)
    ctx = _manager_ctx(current, session)
    flash: dict[str, str] = {"k": "done", "w": "", "a": "shutdown"}
    try:
        try:
            data = ShutdownIn.model_validate({"reason": reason.strip(), "archive": archive.strip()})
        except ValidationError as error:
            raise InvalidInput.of("the shutdown is not valid", error) from error
        shutdown.shut_down(ctx, campaign_id=campaign_id, data=data)
        session.commit()
    except (Conflict, InvalidInput) as error:
        session.rollback()
        flash = {"k": "error", "w": "", "a": "shutdown", "m": _refusal(error)}
    return _back(current, campaign_id, flash, "shutdown")


# -- the report and the exports ----------------------------------------------------------------


def _step_scale(built: CampaignReport) -> float:
    values = [s.median_minutes or 0 for s in built.steps] + [
        s.budget_minutes or 0 for s in built.steps
    ]
    return max([1.0, *values])


@router.get("/campaigns/{campaign_id}/report", dependencies=readers)
def report_page(
    campaign_id: CampaignId,
    request: Request,
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    found = campaign_or_404(session, campaign_id)
    built = report.build(session, server(request).library, campaign_id=campaign_id)
    return current.render(
        "campaign_report.html",
        nav="campaigns",
        report=built,
        now=server(request).clock.now(),
        step_scale=_step_scale(built),
        first_items=FIRST_ITEMS,
        label=labeller(current),
        title=lambda item: _title(item, current.language.code),
        when=_when(found.timezone),
        campaign_id=campaign_id,
    )


def _stamp(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


def member_rows(session: Session, campaign_id: int, current: Page) -> list[list[Any]]:
    """The export's rows: a header in the page's language, then one row per wave member."""
    rows: list[list[Any]] = [[current.gettext(c) for c in MEMBER_COLUMNS]]
    label = labeller(current)
    for wave in waves.waves_of(session, campaign_id=campaign_id):
        member: MemberOut
        for member in presenting.members_out(session, wave):
            rows.append(
                [
                    wave.code, member.serial, member.customer, member.site, member.model,
                    label(member.status),
                    member.attempts, member.current_node or "",
                    _stamp(member.joined_at), _stamp(member.finished_at),
                ]
            )  # fmt: skip
    return rows


def _download(body: bytes, media_type: str, name: str, current: Page) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return current.finish(Response(body, media_type=media_type, headers=headers))


@router.get("/campaigns/{campaign_id}/export.csv", dependencies=readers)
def export_csv(
    campaign_id: CampaignId, current: Page = Depends(page), session: Session = Depends(db)
) -> Response:
    campaign_or_404(session, campaign_id)
    text = io.StringIO()
    csv.writer(text).writerows(member_rows(session, campaign_id, current))
    # The byte-order mark lets spreadsheet programs read the Chinese headers as UTF-8.
    body = ("\ufeff" + text.getvalue()).encode("utf-8")
    return _download(
        body, "text/csv; charset=utf-8", f"campaign-{campaign_id}-members.csv", current
    )


def _workbook(sheets: list[tuple[str, list[list[Any]]]]) -> bytes:
    # Deferred: openpyxl is slow to import and only the exports need it.
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets:
        sheet = book.create_sheet(name[:31])
        for row in rows:
            sheet.append(row)
        for cell in sheet[1] if rows else ():
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@router.get("/campaigns/{campaign_id}/export.xlsx", dependencies=readers)
def export_xlsx(
    campaign_id: CampaignId, current: Page = Depends(page), session: Session = Depends(db)
) -> Response:
    campaign_or_404(session, campaign_id)
    body = _workbook([(current.gettext("Members"), member_rows(session, campaign_id, current))])
    return _download(body, XLSX, f"campaign-{campaign_id}-members.xlsx", current)


def report_sheets(built: CampaignReport, current: Page) -> list[tuple[str, list[list[Any]]]]:
    """One sheet per table of the report page, headers in the page's language."""
    t, lang = current.gettext, current.language.code
    label = labeller(current)
    wave_rows: list[list[Any]] = [
        [t(h) for h in (N_("Wave"), N_("Title"), N_("Status"), N_("Gate"), N_("Machines"),
                        N_("Succeeded"), N_("Failed"), N_("Success rate (%)"))]
    ]  # fmt: skip
    for w in built.waves:
        wave_rows.append(
            [w.code, _title(w, lang), label(w.status), label(w.gate_state), w.counts.total,
             w.counts.succeeded, w.counts.failed, round(100 * w.success_share, 1)]
        )  # fmt: skip
    step_rows: list[list[Any]] = [
        [t(h) for h in (N_("Step"), N_("Label"), N_("Runs"), N_("Median (min)"),
                        N_("90th percentile (min)"), N_("Budget (min)"), N_("Over budget"))]
    ]  # fmt: skip
    for s in built.steps:
        step_rows.append(
            [s.node, s.label_zh_tw if lang == "zh-TW" else s.label_en, s.runs, s.median_minutes,
             s.p90_minutes, s.budget_minutes, s.over_budget]
        )  # fmt: skip
    problems: list[list[Any]] = [[t(N_("Problem type")), t(N_("Count"))]]
    problems += [[kind, number] for kind, number in built.problems_by_type.items()]
    sat = built.satisfaction
    inc = built.incidents
    blockers = built.shutdown
    return [
        (t(N_("Waves")), wave_rows),
        (t(N_("Step durations")), step_rows),
        (t(N_("Problems")), problems),
        (t(N_("Satisfaction")), [
            [t(N_("Surveys")), t(N_("Passed")), t(N_("Below 8")), t(N_("Asked again"))],
            [sat.surveys, sat.passed, sat.below_8, sat.loops],
        ]),
        (t(N_("Incidents")), [
            [t(N_("Incidents")), t(N_("Still open")), t(N_("Responded within budget")),
             t(N_("Median response (min)"))],
            [inc.total, inc.open, inc.responded_within_budget, inc.median_response_minutes],
        ]),
        (t(N_("Shutdown")), [
            [t(N_("Not on the new platform")), t(N_("Open incidents")),
             t(N_("Without a verified backup")), t(N_("Acceptance missing")), t(N_("Shut down"))],
            [len(blockers.not_migrated), len(blockers.open_incidents),
             len(blockers.unverified_backups), len(blockers.missing_acceptances),
             _stamp(blockers.shutdown_at)],
        ]),
    ]  # fmt: skip


@router.get("/campaigns/{campaign_id}/report.xlsx", dependencies=readers)
def report_xlsx(
    campaign_id: CampaignId,
    request: Request,
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    campaign_or_404(session, campaign_id)
    built = report.build(session, server(request).library, campaign_id=campaign_id)
    body = _workbook(report_sheets(built, current))
    return _download(body, XLSX, f"campaign-{campaign_id}-report.xlsx", current)
