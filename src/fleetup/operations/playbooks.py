"""The playbook of each problem type (chart 4 C-F): what each step asks of the IPC or person.

network: C1 diagnostics on the IPC (DNS, route, reachability) -> C2 switch to the 4G fallback.
hardware: D1 diagnosis checklist ticked by the technician -> D2 swap in a spare (the spare's
one-time enrollment token is shown once, never stored). software: E1 reinstall the program ->
E2 system restore, only if the reinstall failed. user: F1 retraining record -> F2 operating
guidance sent to the customer's contacts. A step that asks the IPC is ``requested`` until the
device action reports; ``problems.follow`` finishes it then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fleetup.core.context import Ctx
from fleetup.core.errors import FieldProblem, InvalidInput
from fleetup.fleet.models import Machine
from fleetup.operations import outside
from fleetup.upgrades.library import SopLibrary

TYPES = ("network", "hardware", "software", "user")
PATHS: dict[str, tuple[str, ...]] = {
    "network": ("C", "C1", "C2", "G", "H"),
    "hardware": ("D", "D1", "D2", "G", "H"),
    "software": ("E", "E1", "E2", "G", "H"),
    "user": ("F", "F1", "F2", "G", "H"),
}
# Steps carried out by a device action: the remote function that asks for it.
DEVICE_STEPS = {
    "C1": "request_diagnostics",
    "C2": "request_fallback",
    "E1": "request_reinstall",
    "E2": "request_restore",
}


@dataclass
class Outcome:
    """What a step did: done now, or requested of the device (``action_id``)."""

    status: str
    evidence: dict[str, Any]
    action_id: str = ""
    secret: str = ""


def _device(ctx: Ctx, library: SopLibrary, machine: Machine, node: str, problem_id: int) -> Outcome:
    name = DEVICE_STEPS[node]
    reason = f"problem {problem_id}"
    if name == "request_reinstall":
        action = outside.request(ctx, name, library=library, serial=machine.serial)
    elif name == "request_restore":
        action = outside.request(ctx, name, serial=machine.serial, reason=reason)
    else:
        action = outside.request(ctx, name, serial=machine.serial)
    return Outcome("requested", {"requested": name}, action_id=action)


def _checklist(payload: Mapping[str, Any]) -> Outcome:
    items = payload.get("checklist")
    if not isinstance(items, Mapping) or not items:
        raise InvalidInput(
            "tick the diagnosis checklist: at least one item with true or false",
            [FieldProblem("checklist", "a map of item to true/false")],
        )
    ticked = {str(k): bool(v) for k, v in items.items()}
    return Outcome("done", {"checklist": ticked, "note": str(payload.get("note", ""))})


def _spare(ctx: Ctx, machine: Machine, problem_id: int, payload: Mapping[str, Any]) -> Outcome:
    reason = str(payload.get("reason") or f"problem {problem_id}: hardware fault")
    token = outside.request(ctx, "swap_spare", serial=machine.serial, reason=reason)
    return Outcome("done", {"spare_swapped": True, "reason": reason}, secret=token)


def _retraining(payload: Mapping[str, Any]) -> Outcome:
    topics = payload.get("topics")
    trainee = str(payload.get("trainee", "")).strip()
    problems = []
    if not isinstance(topics, list) or not [t for t in topics if str(t).strip()]:
        problems.append(FieldProblem("topics", "at least one topic"))
    if not trainee:
        problems.append(FieldProblem("trainee", "who was trained"))
    if problems:
        raise InvalidInput("record the retraining: its topics and the trainee", problems)
    assert isinstance(topics, list)
    return Outcome("done", {"topics": [str(t) for t in topics], "trainee": trainee})


def _guidance(ctx: Ctx, machine: Machine, problem_id: int, payload: Mapping[str, Any]) -> Outcome:
    text = str(payload.get("guidance", "")).strip()
    if not text:
        raise InvalidInput(
            "write the operating guidance for the customer",
            [FieldProblem("guidance", "required")],
        )
    contacts = [f"contact:{c.id}" for c in machine.site.customer.contacts]
    queued = 0
    if contacts:
        queued = outside.notify(
            ctx,
            template="problem_guidance",
            key=f"problem-{problem_id}-guidance",
            to=contacts,
            params={
                "problem_id": problem_id,
                "serial": machine.serial,
                "customer": machine.site.customer.name,
                "guidance": text,
            },
        )
    return Outcome("done", {"guidance": text, "sent_to": contacts, "queued": queued})


def _simple(payload: Mapping[str, Any], default: str) -> Outcome:
    return Outcome("done", {"note": str(payload.get("note") or default)})


Step = Callable[[Ctx, SopLibrary, Machine, int, Mapping[str, Any]], Outcome]

STEPS: dict[str, Step] = {
    "C1": lambda ctx, lib, m, pid, p: _device(ctx, lib, m, "C1", pid),
    "C2": lambda ctx, lib, m, pid, p: _device(ctx, lib, m, "C2", pid),
    "D1": lambda ctx, lib, m, pid, p: _checklist(p),
    "D2": lambda ctx, lib, m, pid, p: _spare(ctx, m, pid, p),
    "E1": lambda ctx, lib, m, pid, p: _device(ctx, lib, m, "E1", pid),
    "E2": lambda ctx, lib, m, pid, p: _device(ctx, lib, m, "E2", pid),
    "F1": lambda ctx, lib, m, pid, p: _retraining(p),
    "F2": lambda ctx, lib, m, pid, p: _guidance(ctx, m, pid, p),
    "G": lambda ctx, lib, m, pid, p: _simple(p, "problem solved"),
    "H": lambda ctx, lib, m, pid, p: _simple(p, "customer confirmed"),
}


def run(
    ctx: Ctx,
    library: SopLibrary,
    *,
    machine: Machine,
    problem_id: int,
    node: str,
    payload: Mapping[str, Any],
) -> Outcome:
    """Carry out one playbook step and say what came of it."""
    return STEPS[node](ctx, library, machine, problem_id, payload)
