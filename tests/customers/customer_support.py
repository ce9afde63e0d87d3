"""Arranging a customer's machine and walking its chart 2 upgrade to a given step."""

from __future__ import annotations

from typing import Any

from fleetup.core.context import Ctx
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import ContactIn, CustomerIn, MachineIn, SiteIn
from fleetup.upgrades import service as upgrades
from fleetup.upgrades.library import SopLibrary

# Chart 2 from B to V on the happy path: every event a technician and the agent post.
HAPPY_PATH: list[dict[str, Any]] = [
    {"type": "decision_taken", "node": "B", "outcome": "yes"},
    {"type": "step_started", "node": "C"},
    {"type": "step_finished", "node": "C"},
    {"type": "decision_taken", "node": "E", "outcome": "yes"},
    {"type": "step_started", "node": "F"},
    {"type": "step_finished", "node": "F"},
    {"type": "check_passed", "node": "B1"},
    {"type": "step_started", "node": "I"},
    {"type": "step_finished", "node": "I"},
    {"type": "step_started", "node": "J"},
    {"type": "step_finished", "node": "J"},
    {"type": "check_passed", "node": "C1"},
    {"type": "decision_taken", "node": "K", "outcome": "yes"},
    {"type": "step_started", "node": "L"},
    {"type": "step_finished", "node": "L"},
    {"type": "check_passed", "node": "D1"},
    {"type": "step_started", "node": "N"},
    {"type": "step_finished", "node": "N"},
    {"type": "check_passed", "node": "E1"},
    {"type": "step_started", "node": "O"},
    {"type": "step_finished", "node": "O", "evidence": {"text": "all 12 functions normal"}},
    {"type": "check_passed", "node": "F1"},
    {"type": "decision_taken", "node": "P", "outcome": "yes"},
    {"type": "step_started", "node": "Q"},
    {"type": "check_passed", "node": "G1"},
    {"type": "step_finished", "node": "Q"},
    {"type": "step_started", "node": "S"},
    {"type": "step_finished", "node": "S"},
    {"type": "step_started", "node": "T"},
    {"type": "step_finished", "node": "T"},
    {"type": "step_started", "node": "U"},
    {"type": "step_finished", "node": "U"},
]
AUTOMATIC = {"F", "I", "J", "L", "N", "O", "B1", "C1", "D1", "E1", "F1", "K"}


def make_machine(ctx: Ctx, serial: str = "CM-0001", customer: str = "C01") -> str:
    """A customer with one contact, a site and a machine; commits."""
    fleet.create_customer(
        ctx,
        CustomerIn(
            code=customer,
            name="精密機械股份有限公司",
            contacts=[ContactIn(name="王小明", email="wang@example.com")],
        ),
    )
    fleet.create_site(ctx, SiteIn(customer_code=customer, code="S1", name="台中一廠"))
    fleet.create_machine(
        ctx,
        MachineIn(
            serial=serial, model="CNC-500", ipc_os="Win10", customer_code=customer, site_code="S1"
        ),
    )
    ctx.session.commit()
    return serial


def add_machine(ctx: Ctx, serial: str, customer: str = "C01") -> str:
    fleet.create_machine(
        ctx,
        MachineIn(
            serial=serial, model="CNC-500", ipc_os="Win10", customer_code=customer, site_code="S1"
        ),
    )
    ctx.session.commit()
    return serial


def walk(
    ctx: Ctx, library: SopLibrary, instance_id: int, *, until: str, only: set[str] | None = None
) -> None:
    """Post the happy path's events until the instance stands at ``until``; commits.

    With ``only``, post just the events on those nodes and stop at the first other one.
    """
    for event in HAPPY_PATH:
        instance = upgrades.get(ctx.session, instance_id=instance_id)
        if instance.current_node == until:
            break
        if _done(ctx, instance_id, event):
            continue
        if only is not None and event["node"] not in only:
            break
        upgrades.post_event(ctx, library, instance_id=instance_id, event=event)
    ctx.session.commit()


def _done(ctx: Ctx, instance_id: int, event: dict[str, Any]) -> bool:
    for record in upgrades.transitions(ctx.session, instance_id=instance_id):
        if record.event.get("type") == event["type"] and record.event.get("node") == event["node"]:
            return True
    return False


def start(ctx: Ctx, library: SopLibrary, serial: str) -> int:
    instance = upgrades.start_upgrade(ctx, library, serial=serial)
    ctx.session.commit()
    return instance.id
