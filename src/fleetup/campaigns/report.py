"""The campaign report: per-wave success, step durations against budget, problems by type,
satisfaction, incidents and the shutdown, read from the SOP instances the campaign ran.

Every figure comes from the stored instances (chart 2 for the machines of the campaign's
waves, chart 4 for problems, chart 5 for satisfaction, chart 6 for incidents), so the report
says what the SOP recorded, not what a separate counter believed.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetup.campaigns import service, shutdown, waves
from fleetup.campaigns.models import WaveMember
from fleetup.campaigns.schemas import BlockersOut, CountsOut
from fleetup.sop.state import InstanceState
from fleetup.upgrades.library import UPGRADE_CHART, SopLibrary
from fleetup.upgrades.models import SopInstance

PROBLEM_CHART, SURVEY_CHART, INCIDENT_CHART = "chart4", "chart5", "chart6"
PROBLEM_DECISION, SURVEY_DECISION, RESPONSE_STEP = "B", "E", "C"


class WaveLine(BaseModel):
    code: str
    title_zh_tw: str
    title_en: str
    status: str
    gate_state: str
    counts: CountsOut
    success_share: float


class StepLine(BaseModel):
    node: str
    label_zh_tw: str
    label_en: str
    budget_minutes: float | None
    runs: int
    median_minutes: float | None
    p90_minutes: float | None
    over_budget: int


class SatisfactionLine(BaseModel):
    surveys: int
    passed: int
    below_8: int
    loops: int


class IncidentLine(BaseModel):
    total: int
    open: int
    responded_within_budget: int
    median_response_minutes: float | None


class CampaignReport(BaseModel):
    campaign_id: int
    name: str
    status: str
    waves: list[WaveLine]
    machines_total: int
    machines_succeeded: int
    machines_failed: int
    total_minutes_median: float | None
    total_budget_minutes: float | None
    steps: list[StepLine]
    problems_by_type: dict[str, int]
    satisfaction: SatisfactionLine
    incidents: IncidentLine
    shutdown: BlockersOut


def _p90(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def _states(session: Session, query: object) -> list[InstanceState]:
    return [InstanceState.model_validate(row.state) for row in session.scalars(query)]  # type: ignore[call-overload]


def build(session: Session, library: SopLibrary, *, campaign_id: int) -> CampaignReport:
    campaign = service.get(session, campaign_id=campaign_id)
    wave_rows = waves.waves_of(session, campaign_id=campaign_id)
    wave_lines = []
    for wave in wave_rows:
        out = waves.counts(session, wave_id=wave.id)
        finished = out.total - out.cancelled
        wave_lines.append(
            WaveLine(
                code=wave.code,
                title_zh_tw=wave.title_zh_tw,
                title_en=wave.title_en,
                status=wave.status,
                gate_state=wave.gate_state,
                counts=out,
                success_share=out.succeeded / finished if finished else 0.0,
            )
        )
    machine_ids = list(
        session.scalars(
            select(WaveMember.machine_id).where(WaveMember.wave_id.in_([w.id for w in wave_rows]))
        )
    )
    upgrades = _states(
        session,
        select(SopInstance).where(
            SopInstance.chart_id == UPGRADE_CHART, SopInstance.machine_id.in_(machine_ids)
        ),
    )
    chart = library.current(UPGRADE_CHART)
    durations: dict[str, list[float]] = defaultdict(list)
    budgets: dict[str, float | None] = {}
    totals: list[float] = []
    for state in upgrades:
        total = 0.0
        for run in state.runs:
            minutes = run.duration_minutes
            if minutes is None:
                continue
            durations[run.node].append(minutes)
            budgets.setdefault(run.node, run.budget_minutes)
            if run.budget_minutes is not None:
                total += minutes
        if state.status == "completed":
            totals.append(total)
    steps = []
    for node in chart.nodes:
        values = durations.get(node.id)
        if not values:
            continue
        budget = budgets.get(node.id)
        label_zh, label_en = node.label.zh_tw.split("<br/>")[0], node.label.en.split("<br/>")[0]
        steps.append(
            StepLine(
                node=node.id,
                label_zh_tw=label_zh,
                label_en=label_en,
                budget_minutes=budget,
                runs=len(values),
                median_minutes=round(statistics.median(values), 1),
                p90_minutes=_p90(values),
                over_budget=sum(1 for v in values if budget is not None and v > budget),
            )
        )
    total_budget = next(
        (n.total_budget_minutes for n in chart.nodes if n.total_budget_minutes is not None), None
    )
    succeeded = sum(line.counts.succeeded for line in wave_lines)
    failed = sum(line.counts.failed for line in wave_lines)
    return CampaignReport(
        campaign_id=campaign.id,
        name=campaign.name,
        status=campaign.status,
        waves=wave_lines,
        machines_total=sum(line.counts.total - line.counts.cancelled for line in wave_lines),
        machines_succeeded=succeeded,
        machines_failed=failed,
        total_minutes_median=round(statistics.median(totals), 1) if totals else None,
        total_budget_minutes=total_budget,
        steps=steps,
        problems_by_type=_problems(session),
        satisfaction=_satisfaction(session),
        incidents=_incidents(session),
        shutdown=shutdown.blockers(session, campaign_id=campaign_id),
    )


def _decisions(state: InstanceState, node: str) -> list[str]:
    return [run.outcome for run in state.runs if run.node == node and run.outcome is not None]


def _problems(session: Session) -> dict[str, int]:
    found: Counter[str] = Counter()
    for state in _states(session, select(SopInstance).where(SopInstance.chart_id == PROBLEM_CHART)):
        for outcome in _decisions(state, PROBLEM_DECISION)[:1]:
            found[outcome] += 1
    return dict(sorted(found.items()))


def _satisfaction(session: Session) -> SatisfactionLine:
    surveys = passed = below = loops = 0
    for state in _states(session, select(SopInstance).where(SopInstance.chart_id == SURVEY_CHART)):
        outcomes = _decisions(state, SURVEY_DECISION)
        surveys += len(outcomes)
        below += sum(1 for o in outcomes if o != "at_least_8")
        passed += 1 if "at_least_8" in outcomes else 0
        loops += 1 if len(outcomes) > 1 else 0
    return SatisfactionLine(surveys=surveys, passed=passed, below_8=below, loops=loops)


def _incidents(session: Session) -> IncidentLine:
    rows = session.scalars(select(SopInstance).where(SopInstance.chart_id == INCIDENT_CHART)).all()
    responses: list[float] = []
    within = 0
    for row in rows:
        state = InstanceState.model_validate(row.state)
        for run in state.runs:
            if run.node == RESPONSE_STEP and run.duration_minutes is not None:
                responses.append(run.duration_minutes)
                if run.budget_minutes is None or run.duration_minutes <= run.budget_minutes:
                    within += 1
    return IncidentLine(
        total=len(rows),
        open=sum(1 for r in rows if r.status in ("running", "waiting")),
        responded_within_budget=within,
        median_response_minutes=round(statistics.median(responses), 1) if responses else None,
    )
