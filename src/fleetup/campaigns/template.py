"""A campaign's plan read from chart 1 of the SOP: phases, activities, waves (pure).

Phases are the chart's main path (B to F, each with its planned weeks); activities are what
each phase contains. The activities done by technicians on machines become waves: the
trials D1 and D2 (small and medium groups) and the batches E1-E3 with the chart's machine
counts. A batch whose planned weeks span the whole phase starts one week after the previous
batch, so E1, E2 and E3 take weeks 11, 12 and 13, and E4 (the shutdown) is left week 14.

The trials are part of the fleet, so the last batch takes the rest: with the default trial
sizes (3 and 7) and a fleet of 90, E3 takes the 20 machines left of the SOP's 30.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fleetup.sop.model import Definition, Node

TRIAL_SIZES = {"D1": 3, "D2": 7}
SHUTDOWN_ACTIVITY = "E4"
# After the trials a manager decides to go on with the formal migration.
APPROVAL_AFTER = {"D2"}


@dataclass(frozen=True)
class PhasePlan:
    code: str
    title_zh_tw: str
    title_en: str
    first_week: int
    last_week: int


@dataclass(frozen=True)
class ActivityPlan:
    code: str
    phase: str
    title_zh_tw: str
    title_en: str
    performer: str
    first_week: int
    last_week: int


@dataclass(frozen=True)
class WavePlan:
    code: str
    title_zh_tw: str
    title_en: str
    week: int
    selection: dict[str, Any]
    gate: dict[str, Any]


@dataclass(frozen=True)
class CampaignPlan:
    phases: tuple[PhasePlan, ...]
    activities: tuple[ActivityPlan, ...]
    waves: tuple[WavePlan, ...]


def _title(node: Node) -> tuple[str, str]:
    zh, en = node.label.zh_tw.split("<br/>")[0], node.label.en.split("<br/>")[0]
    return zh, en


def _main_path(chart: Definition) -> list[Node]:
    path: list[Node] = []
    current = chart.starts[0]
    seen: set[str] = set()
    while current not in seen:
        seen.add(current)
        node = chart.node(current)
        if node.weeks is not None:
            path.append(node)
        following = chart.out_edges(current)
        if not following:
            break
        current = following[0].to
    return path


def plan_from(chart: Definition) -> CampaignPlan:
    """The campaign plan chart 1 describes."""
    phases: list[PhasePlan] = []
    activities: list[ActivityPlan] = []
    waves: list[WavePlan] = []
    for phase in _main_path(chart):
        assert phase.weeks is not None
        zh, en = _title(phase)
        phases.append(PhasePlan(phase.id, zh, en, phase.weeks.first, phase.weeks.last))
        batch_week = phase.weeks.first
        for node in chart.contained(phase.id):
            weeks = node.weeks or phase.weeks
            zh, en = _title(node)
            activities.append(
                ActivityPlan(
                    node.id, phase.id, zh, en, node.performer or "manager", weeks.first, weeks.last
                )
            )
            if node.performer != "technician":
                continue
            if node.machines is not None:
                selection: dict[str, Any] = {"kind": "count", "count": node.machines}
                week = batch_week if weeks.first != weeks.last else weeks.first
                batch_week = week + 1
            else:
                selection = {"kind": "count", "count": TRIAL_SIZES.get(node.id, 3)}
                week = weeks.first
            advance = "approval" if node.id in APPROVAL_AFTER else "auto"
            gate = {"success_share": 0.95, "advance": advance, "error_count": 3, "error_share": 0.2}
            if node.machines is None:
                # A trial is small: every machine must complete, and one failure pauses it.
                gate = {"success_share": 1.0, "advance": advance, "error_count": 1}
            waves.append(WavePlan(node.id, zh, en, week, selection, gate))
    if waves and waves[-1].selection.get("kind") == "count" and len(waves) > 1:
        last = waves[-1]
        rest = {"kind": "rest", "planned": last.selection["count"]}
        waves[-1] = WavePlan(last.code, last.title_zh_tw, last.title_en, last.week, rest, last.gate)
    return CampaignPlan(tuple(phases), tuple(activities), tuple(waves))
