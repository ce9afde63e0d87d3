"""Problems on machines (chart 4): opened, walked through their playbook, confirmed, closed.

A technician opens a problem from the API or the web, or the agent reports one in its
heartbeat (``health.problem``) and monitoring opens it. Each problem runs a chart 4 instance
whose decision B is the problem's type, and remembers the chart 2 step of the machine's
upgrade where it arose. Its steps go in order along the type's path; every step is recorded
on the instance with its evidence and as a ``ProblemStep`` row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from fleetup.core.audit import snapshot
from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from fleetup.fleet import service as fleet
from fleetup.operations import charting, outside, playbooks
from fleetup.operations.models import Problem, ProblemStep
from fleetup.upgrades import service as upgrades
from fleetup.upgrades.library import SopLibrary
from fleetup.upgrades.models import SopInstance

CHART = "chart4"


def get(session: Session, *, problem_id: int) -> Problem:
    problem = session.get(Problem, problem_id)
    if problem is None:
        raise NotFound(f"no problem {problem_id}")
    return problem


def get_all(
    session: Session, *, serial: str | None = None, status: str | None = None, limit: int = 200
) -> Sequence[Problem]:
    query = select(Problem).order_by(Problem.id.desc()).limit(limit)
    if serial:
        query = query.where(Problem.serial == serial)
    if status:
        query = query.where(Problem.status == status)
    return session.scalars(query).all()


def steps_of(session: Session, *, problem_id: int) -> Sequence[ProblemStep]:
    return session.scalars(
        select(ProblemStep).where(ProblemStep.problem_id == problem_id).order_by(ProblemStep.id)
    ).all()


def instance_of(session: Session, problem: Problem) -> SopInstance:
    return upgrades.get(session, instance_id=problem.instance_id)


def path_of(problem: Problem) -> tuple[str, ...]:
    return playbooks.PATHS[problem.type]


def next_step(session: Session, problem: Problem) -> tuple[str | None, bool]:
    """The step due next on the problem's path and whether it is already under way."""
    path = path_of(problem)
    at = charting.position(instance_of(session, problem), path)
    if at >= len(path) * 2 - 1:
        return None, False
    if at % 2 == 0:
        return path[at // 2], True
    return path[(at + 1) // 2], False


def _record(
    ctx: Ctx, problem: Problem, node: str, status: str, evidence: Mapping[str, Any], action: str
) -> ProblemStep:
    step = ProblemStep(
        problem_id=problem.id,
        node=node,
        status=status,
        action_id=action,
        evidence=dict(evidence),
        actor=ctx.actor,
        at=ctx.now(),
    )
    ctx.session.add(step)
    ctx.session.flush()
    ctx.audit("create", step, None)
    return step


def open_problem(
    ctx: Ctx,
    library: SopLibrary,
    *,
    serial: str,
    type: str,
    summary: str = "",
    source: str = "technician",
) -> Problem:
    """Open a problem on a machine and start its chart 4 instance at the type's branch.

    Raises:
        NotFound: no such machine. InvalidInput: unknown type.
    """
    if type not in playbooks.TYPES:
        raise InvalidInput(
            f"unknown problem type {type!r}",
            [FieldProblem("type", "one of " + ", ".join(playbooks.TYPES))],
        )
    machine = fleet.get_machine(ctx.session, serial=serial)
    upgrade = upgrades.active_upgrade(ctx.session, machine_id=machine.id)
    instance = upgrades.start_about(
        ctx, library, chart_id=CHART, subject_kind="machine", subject_ref=serial
    )
    ctx.session.flush()
    problem = Problem(
        machine_id=machine.id,
        serial=serial,
        type=type,
        status="open",
        summary=summary.strip(),
        source=source,
        instance_id=instance.id,
        upgrade_instance_id=upgrade.id if upgrade is not None else None,
        upgrade_node=upgrade.current_node if upgrade is not None else "",
        opened_by=ctx.actor,
        opened_at=ctx.now(),
    )
    ctx.session.add(problem)
    ctx.session.flush()
    ctx.audit("create", problem, None)
    evidence = {"text": summary.strip() or type}
    instance, _ = upgrades.post_event(
        ctx,
        library,
        instance_id=instance.id,
        event={"type": "decision_taken", "node": "B", "outcome": type, "evidence": evidence},
    )
    branch = path_of(problem)[0]
    detail = {"type": type, "summary": problem.summary, "upgrade_node": problem.upgrade_node}
    charting.reach(
        ctx,
        library,
        instance,
        path_of(problem),
        (branch, charting.FINISH),
        {branch: charting.evidence_text(detail)},
    )
    _record(ctx, problem, branch, "done", detail, "")
    return problem


def act(
    ctx: Ctx,
    library: SopLibrary,
    *,
    problem_id: int,
    node: str,
    payload: Mapping[str, Any] | None = None,
) -> tuple[Problem, ProblemStep, str]:
    """Carry out the next step of a problem's playbook.

    A step already under way (a device action requested) is finished by hand when
    ``payload`` has ``result`` (``ok``/``failed``) and the evidence.

    Returns:
        The problem, the recorded step, and a secret to show once (a spare's enrollment token).

    Raises:
        Conflict: the problem is closed, or ``node`` is not the step due now.
        InvalidInput: the step's payload is incomplete.
    """
    given = dict(payload or {})
    problem = get(ctx.session, problem_id=problem_id)
    if problem.status == "closed":
        raise Conflict(f"problem {problem.id} is closed")
    expected, under_way = next_step(ctx.session, problem)
    if node != expected:
        raise Conflict(f"problem {problem.id}: the step due now is {expected}, not {node}")
    if under_way:
        result = str(given.get("result", ""))
        if result not in ("ok", "failed"):
            raise InvalidInput(
                f"step {node} waits for its device action; report it with result ok or failed",
                [FieldProblem("result", "ok or failed")],
            )
        step = complete(ctx, library, problem, node, ok=result == "ok", evidence=given)
        return problem, step, ""
    machine = fleet.get_machine(ctx.session, serial=problem.serial)
    outcome = playbooks.run(
        ctx, library, machine=machine, problem_id=problem.id, node=node, payload=given
    )
    instance = instance_of(ctx.session, problem)
    charting.reach(ctx, library, instance, path_of(problem), (node, charting.START))
    if outcome.status == "requested":
        step = _record(ctx, problem, node, "requested", outcome.evidence, outcome.action_id)
        return problem, step, ""
    step = complete(ctx, library, problem, node, ok=True, evidence=outcome.evidence)
    return problem, step, outcome.secret


def complete(
    ctx: Ctx,
    library: SopLibrary,
    problem: Problem,
    node: str,
    *,
    ok: bool,
    evidence: Mapping[str, Any],
    action_id: str = "",
) -> ProblemStep:
    """Finish a started step on the chart and record it; a failed reinstall goes on to E2."""
    instance = instance_of(ctx.session, problem)
    text = charting.evidence_text(evidence)
    if ok or node == "E1":
        # A failed reinstall is a finished E1 whose evidence says so: chart 4 then goes to E2.
        charting.reach(
            ctx, library, instance, path_of(problem), (node, charting.FINISH), {node: text}
        )
    else:
        upgrades.post_event(
            ctx,
            library,
            instance_id=instance.id,
            event={"type": "step_finished", "node": node, "result": "failed", "evidence": text},
        )
    step = _record(ctx, problem, node, "done" if ok else "failed", evidence, action_id)
    if node == "G":
        _set_status(ctx, problem, "solved")
    elif node == "H":
        _set_status(ctx, problem, "closed")
    elif node == "E1" and ok:
        nxt = "E2"
        charting.reach(
            ctx,
            library,
            instance_of(ctx.session, problem),
            path_of(problem),
            (nxt, charting.FINISH),
            {nxt: {"text": "not needed: the reinstall succeeded"}},
        )
        _record(ctx, problem, nxt, "skipped", {"reason": "the reinstall succeeded"}, "")
    elif node == "E1":
        act(ctx, library, problem_id=problem.id, node="E2")
    return step


def _set_status(ctx: Ctx, problem: Problem, status: str) -> None:
    before = snapshot(problem)
    problem.status = status
    if status == "closed":
        problem.closed_at = ctx.now()
    ctx.audit(status, problem, before)


def follow_pending() -> ColumnElement[bool]:
    """True when a step waits on its device action (``follow`` may have work)."""
    return select(ProblemStep.id).where(ProblemStep.status == "requested").exists()


def follow(ctx: Ctx, library: SopLibrary) -> int:
    """Finish the steps whose device action has reported; returns how many."""
    handled = 0
    waiting = ctx.session.scalars(
        select(ProblemStep).where(ProblemStep.status == "requested").order_by(ProblemStep.id)
    ).all()
    for step in waiting:
        state = outside.action_state(ctx.session, action_id=step.action_id)
        if state is None or state.status not in ("succeeded", "failed"):
            continue
        before = snapshot(step)
        step.status = "reported"
        ctx.audit("report", step, before)
        problem = get(ctx.session, problem_id=step.problem_id)
        complete(
            ctx,
            library,
            problem,
            step.node,
            ok=state.status == "succeeded",
            evidence=state.evidence,
            action_id=step.action_id,
        )
        handled += 1
    return handled


def open_reported(ctx: Ctx, library: SopLibrary, *, serial: str, report: Any) -> Problem | None:
    """Open the problem an agent reported in its health, unless one of that type is open."""
    if not isinstance(report, Mapping) or report.get("type") not in playbooks.TYPES:
        return None
    kind = str(report["type"])
    already = ctx.session.scalar(
        select(Problem.id).where(
            Problem.serial == serial, Problem.type == kind, Problem.status != "closed"
        )
    )
    if already is not None:
        return None
    summary = str(report.get("summary", ""))[:2000]
    return open_problem(ctx, library, serial=serial, type=kind, summary=summary, source="agent")
