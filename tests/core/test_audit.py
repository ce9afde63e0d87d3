"""The audit trail notices rows and events changed, inserted or deleted behind fleetup's back."""

from __future__ import annotations

import os

from sqlalchemy import text
from typer.testing import CliRunner

from fleetup.cli import app as cli
from fleetup.core import audit
from fleetup.core.context import Ctx
from fleetup.fleet import service
from fleetup.fleet.models import Site
from fleetup.fleet.schemas import CustomerIn, MachineIn, MachineUpdate, SiteIn


def _seed(ctx: Ctx) -> None:
    service.create_customer(ctx, CustomerIn(code="C01", name="永興精密"))
    service.create_site(ctx, SiteIn(customer_code="C01", code="S1", name="桃園廠"))
    service.create_machine(
        ctx,
        MachineIn(
            serial="M-1", model="CNC-500", ipc_os="Win10", customer_code="C01", site_code="S1"
        ),
    )
    ctx.session.commit()


def test_writes_leave_a_chained_trail_that_verifies(ctx: Ctx) -> None:
    _seed(ctx)
    service.update_machine(ctx, serial="M-1", data=MachineUpdate(program_version="2.0.0"))
    ctx.session.commit()
    events, total = audit.get_all(ctx.session, entity_type="machines")
    assert total == 2
    assert events[0].action == "update" and events[0].actor == "test"
    assert events[0].before is not None and events[0].before["program_version"] == ""
    assert events[0].after is not None and events[0].after["program_version"] == "2.0.0"
    assert audit.verify(ctx.session) == []


def test_writes_audited_together_take_consecutive_places_in_the_chain(ctx: Ctx) -> None:
    _seed(ctx)
    machine = service.get_machine(ctx.session, serial="M-1")
    before = audit.snapshot(machine)
    machine.program_version = "2.0.0"
    site = Site(customer_id=machine.site.customer_id, code="S2", name="新竹廠")
    ctx.session.add(site)
    afters = ctx.audit_all(
        [audit.Change("update", machine, before), audit.Change("create", site, None)]
    )
    ctx.session.commit()
    events, total = audit.get_all(ctx.session)
    assert total == 5
    assert [(e.seq, e.action, e.entity_type) for e in events[:2]] == [
        (5, "create", "sites"),
        (4, "update", "machines"),
    ]
    assert events[0].prev_hash == events[1].hash
    assert afters[0] is not None and afters[0]["program_version"] == "2.0.0"
    assert afters[1] is not None and afters[1]["code"] == "S2"
    assert audit.verify(ctx.session) == []


def test_a_row_edited_in_the_database_is_named(ctx: Ctx) -> None:
    _seed(ctx)
    ctx.session.execute(text("UPDATE machines SET model = 'HACKED' WHERE serial = 'M-1'"))
    ctx.session.commit()
    findings = audit.verify(ctx.session)
    assert [(f.where, f.problem) for f in findings] == [
        ("machines 1", "was changed outside fleetup: model")
    ]


def test_a_row_deleted_or_inserted_in_the_database_is_named(ctx: Ctx) -> None:
    _seed(ctx)
    ctx.session.execute(text("DELETE FROM machines WHERE serial = 'M-1'"))
    ctx.session.execute(
        text("INSERT INTO customers (code, name, is_existing) VALUES ('X9', 'ghost', true)")
    )
    ctx.session.commit()
    problems = {(f.where, f.problem) for f in audit.verify(ctx.session)}
    assert ("machines 1", "was deleted outside fleetup") in problems
    assert ("customers 2", "is not in the audit trail") in problems


def test_an_edited_or_removed_event_breaks_the_chain_there(ctx: Ctx) -> None:
    _seed(ctx)
    ctx.session.execute(text("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 2"))
    ctx.session.execute(text("DELETE FROM audit_events WHERE seq = 1"))
    ctx.session.commit()
    problems = [(f.where, f.problem) for f in audit.verify(ctx.session)]
    assert ("audit event 2 (sites 1)", "was changed after it was written") in problems
    assert any(problem == "events 1..1 are missing" for _, problem in problems)


def test_cli_audit_verify_exits_non_zero_naming_the_row(ctx: Ctx, database_url: str) -> None:
    _seed(ctx)
    runner = CliRunner()
    env = {**os.environ, "FLEETUP_DATABASE_URL": database_url, "COLUMNS": "200"}
    intact = runner.invoke(cli, ["audit", "verify"], env=env)
    assert intact.exit_code == 0, intact.output
    assert "intact" in intact.output

    ctx.session.execute(text("UPDATE sites SET name = '被改過' WHERE code = 'S1'"))
    ctx.session.commit()
    broken = runner.invoke(cli, ["audit", "verify"], env=env)
    assert broken.exit_code == 1
    assert "sites 1" in broken.output
    assert "changed outside fleetup: name" in broken.output


def test_events_of_a_released_savepoint_wait_for_the_outer_commit(ctx: Ctx) -> None:
    _seed(ctx)
    machine = service.get_machine(ctx.session, serial="M-1")
    with ctx.session.begin_nested():
        site = Site(customer_id=machine.site.customer_id, code="S8", name="保留")
        ctx.session.add(site)
        ctx.audit("create", site, None)
    assert audit.count(ctx.session) == 3  # released, but the transaction has not committed
    before = audit.snapshot(machine)
    machine.program_version = "2.0.0"
    ctx.audit("update", machine, before)
    ctx.session.commit()

    events, total = audit.get_all(ctx.session)
    assert total == 5
    assert [(e.action, e.entity_type) for e in events[:2]] == [
        ("update", "machines"),
        ("create", "sites"),
    ]
    assert audit.verify(ctx.session) == []


def test_events_join_the_chain_at_commit_and_a_rolled_back_savepoint_takes_its_own(
    ctx: Ctx,
) -> None:
    _seed(ctx)
    machine = service.get_machine(ctx.session, serial="M-1")
    before = audit.snapshot(machine)
    machine.program_version = "2.0.0"
    ctx.audit("update", machine, before)
    try:
        with ctx.session.begin_nested():
            site = Site(customer_id=machine.site.customer_id, code="S9", name="作廢")
            ctx.session.add(site)
            ctx.audit("create", site, None)
            raise RuntimeError("the savepoint rolls back")
    except RuntimeError:
        pass
    assert audit.count(ctx.session) == 3  # nothing of this transaction is in the trail yet
    ctx.session.commit()

    events, total = audit.get_all(ctx.session)
    assert total == 4
    assert (events[0].action, events[0].entity_type) == ("update", "machines")
    assert audit.verify(ctx.session) == []

    machine.program_version = "3.0.0"
    ctx.audit("update", machine, audit.snapshot(machine))
    ctx.session.rollback()
    assert audit.count(ctx.session) == 4
    assert audit.verify(ctx.session) == []
