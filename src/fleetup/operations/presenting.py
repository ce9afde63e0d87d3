"""Problems and incidents shaped for the API and the pages."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from fleetup.operations import incidents, problems
from fleetup.operations.models import Incident, Problem
from fleetup.operations.schemas import (
    EntryOut,
    IncidentOut,
    ProblemOut,
    ProblemStepOut,
    TaskOut,
)


def problem_out(session: Session, problem: Problem, *, with_steps: bool = True) -> ProblemOut:
    out = ProblemOut.model_validate(problem)
    out.next_step, out.next_step_under_way = problems.next_step(session, problem)
    if with_steps:
        out.steps = [
            ProblemStepOut.model_validate(s)
            for s in problems.steps_of(session, problem_id=problem.id)
        ]
    return out


def incident_out(
    session: Session, incident: Incident, promise_minutes: int, *, full: bool = True
) -> IncidentOut:
    out = IncidentOut.model_validate(incident)
    out.promise_due_at = out.detected_at + timedelta(minutes=promise_minutes)
    if full:
        out.timeline = [
            EntryOut.model_validate(e) for e in incidents.timeline(session, incident_id=incident.id)
        ]
        out.tasks = [
            TaskOut.model_validate(t) for t in incidents.tasks(session, incident_id=incident.id)
        ]
    return out
