"""What can be done with customers, sites and machines. Every write is audited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, bindparam, func, or_, select
from sqlalchemy.orm import Session, joinedload

from fleetup.core.audit import snapshot
from fleetup.core.context import Ctx
from fleetup.core.db import looked_up, remember
from fleetup.core.errors import Conflict, NotFound
from fleetup.fleet.models import Contact, Customer, Machine, Site
from fleetup.fleet.schemas import (
    ContactIn,
    CustomerIn,
    CustomerUpdate,
    MachineFilter,
    MachineIn,
    MachineOut,
    MachineUpdate,
    SiteIn,
    SiteUpdate,
)

T = TypeVar("T")
Q = TypeVar("Q", bound=Select[Any])


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int
    limit: int
    offset: int


# Customers ---------------------------------------------------------------------------------


def get_customer(session: Session, *, code: str) -> Customer:
    customer = session.scalar(select(Customer).where(Customer.code == code))
    if customer is None:
        raise NotFound(f"no customer with code {code!r}")
    return customer


def get_all_customers(session: Session) -> Sequence[Customer]:
    return (
        session.scalars(
            select(Customer).options(joinedload(Customer.contacts)).order_by(Customer.code)
        )
        .unique()
        .all()
    )


def _set_contacts(ctx: Ctx, customer: Customer, contacts: list[ContactIn]) -> None:
    for old in list(customer.contacts):
        ctx.audit("delete", old, snapshot(old), deleted=True)
        customer.contacts.remove(old)
    ctx.session.flush()
    for data in contacts:
        contact = Contact(
            name=data.name, phone=data.phone, email=data.email or "", line_id=data.line_id
        )
        customer.contacts.append(contact)
        ctx.session.flush()
        ctx.audit("create", contact, None)


def add_contact(ctx: Ctx, *, customer_code: str, data: ContactIn) -> Contact:
    """Add one contact to a customer, keeping the contacts it has.

    Raises:
        NotFound: there is no customer with that code.
    """
    customer = get_customer(ctx.session, code=customer_code)
    contact = Contact(
        name=data.name, phone=data.phone, email=data.email or "", line_id=data.line_id
    )
    customer.contacts.append(contact)
    ctx.session.flush()
    ctx.audit("create", contact, None)
    return contact


def update_contact(ctx: Ctx, *, customer_code: str, name: str, data: ContactIn) -> Contact:
    """Replace the details of the customer's (first) contact called ``name``.

    Raises:
        NotFound: the customer does not exist, or has no contact of that name.
    """
    customer = get_customer(ctx.session, code=customer_code)
    contact = next((c for c in customer.contacts if c.name == name), None)
    if contact is None:
        raise NotFound(f"customer {customer_code!r} has no contact called {name!r}")
    before = snapshot(contact)
    contact.name, contact.phone = data.name, data.phone
    contact.email, contact.line_id = data.email or "", data.line_id
    if before != snapshot(contact):
        ctx.audit("update", contact, before)
    return contact


def create_customer(ctx: Ctx, data: CustomerIn) -> Customer:
    if ctx.session.scalar(select(Customer.id).where(Customer.code == data.code)) is not None:
        raise Conflict(f"a customer with code {data.code!r} exists already")
    customer = Customer(code=data.code, name=data.name, is_existing=data.is_existing)
    ctx.session.add(customer)
    ctx.audit("create", customer, None)
    _set_contacts(ctx, customer, data.contacts)
    return customer


def update_customer(ctx: Ctx, *, code: str, data: CustomerUpdate) -> Customer:
    customer = get_customer(ctx.session, code=code)
    before = snapshot(customer)
    if data.name is not None:
        customer.name = data.name
    if data.is_existing is not None:
        customer.is_existing = data.is_existing
    if before != snapshot(customer):
        ctx.audit("update", customer, before)
    if data.contacts is not None:
        _set_contacts(ctx, customer, data.contacts)
    return customer


# Sites -------------------------------------------------------------------------------------


def get_site(session: Session, *, customer_code: str, code: str) -> Site:
    site = session.scalar(
        select(Site).join(Customer).where(Customer.code == customer_code, Site.code == code)
    )
    if site is None:
        raise NotFound(f"customer {customer_code!r} has no site {code!r}")
    return site


def get_all_sites(session: Session, *, customer_code: str | None = None) -> Sequence[Site]:
    query = select(Site).join(Customer).order_by(Customer.code, Site.code)
    if customer_code:
        query = query.where(Customer.code == customer_code)
    return session.scalars(query).all()


def create_site(ctx: Ctx, data: SiteIn) -> Site:
    customer = get_customer(ctx.session, code=data.customer_code)
    exists = ctx.session.scalar(
        select(Site.id).where(Site.customer_id == customer.id, Site.code == data.code)
    )
    if exists is not None:
        raise Conflict(f"customer {data.customer_code!r} already has a site {data.code!r}")
    site = Site(
        customer=customer,
        code=data.code,
        name=data.name,
        address=data.address,
        timezone=data.timezone,
        maintenance_windows=[w.model_dump() for w in data.maintenance_windows],
    )
    ctx.session.add(site)
    ctx.audit("create", site, None)
    return site


def update_site(ctx: Ctx, *, customer_code: str, code: str, data: SiteUpdate) -> Site:
    site = get_site(ctx.session, customer_code=customer_code, code=code)
    before = snapshot(site)
    for name in ("name", "address", "timezone"):
        value = getattr(data, name)
        if value is not None:
            setattr(site, name, value)
    if data.maintenance_windows is not None:
        site.maintenance_windows = [w.model_dump() for w in data.maintenance_windows]
    if before != snapshot(site):
        ctx.audit("update", site, before)
    return site


# Machines ----------------------------------------------------------------------------------


def machine_out(machine: Machine) -> MachineOut:
    site = machine.site
    return MachineOut(
        id=machine.id,
        serial=machine.serial,
        model=machine.model,
        ipc_os=machine.ipc_os,
        old_system_id=machine.old_system_id,
        site_id=site.id,
        site_code=site.code,
        site_name=site.name,
        customer_id=site.customer.id,
        customer_code=site.customer.code,
        customer_name=site.customer.name,
        program_version=machine.program_version,
        state=machine.state,
    )


# Asked by most requests about a machine; built once, its cache key is derived once too.
_MACHINE_BY_SERIAL = (
    select(Machine)
    .options(joinedload(Machine.site).joinedload(Site.customer))
    .where(Machine.serial == bindparam("serial"))
)


def get_machine(session: Session, *, serial: str) -> Machine:
    """The machine with ``serial``, its site and customer loaded (the one this session found
    already, if it did).

    Raises:
        NotFound: no such machine.
    """
    known: Machine | None = looked_up(session, "machine", serial)
    if known is not None and known.serial == serial:
        return known
    machine = session.scalar(_MACHINE_BY_SERIAL, {"serial": serial})
    if machine is None:
        raise NotFound(f"no machine with serial {serial!r}")
    remember(session, "machine", serial, machine)
    return machine


def _filtered(query: Q, where: MachineFilter) -> Q:
    query = query.join(Machine.site).join(Site.customer)
    if where.customer:
        query = query.where(Customer.code == where.customer)
    if where.site:
        query = query.where(Site.code == where.site)
    if where.state:
        query = query.where(Machine.state == where.state)
    if where.model:
        query = query.where(Machine.model == where.model)
    if where.q:
        pattern = f"%{where.q}%"
        query = query.where(
            or_(Machine.serial.ilike(pattern), Machine.old_system_id.ilike(pattern))
        )
    return query


def get_all_machines(
    session: Session, *, where: MachineFilter, limit: int = 50, offset: int = 0
) -> Page[Machine]:
    total = session.scalar(_filtered(select(func.count(Machine.id)), where)) or 0
    items = session.scalars(
        _filtered(select(Machine), where)
        .options(joinedload(Machine.site).joinedload(Site.customer))
        .order_by(Customer.code, Site.code, Machine.serial)
        .limit(limit)
        .offset(offset)
    ).all()
    return Page(items=items, total=total, limit=limit, offset=offset)


def create_machine(ctx: Ctx, data: MachineIn) -> Machine:
    site = get_site(ctx.session, customer_code=data.customer_code, code=data.site_code)
    if ctx.session.scalar(select(Machine.id).where(Machine.serial == data.serial)) is not None:
        raise Conflict(f"a machine with serial {data.serial!r} exists already")
    machine = Machine(
        serial=data.serial,
        model=data.model,
        ipc_os=data.ipc_os,
        old_system_id=data.old_system_id,
        site=site,
        program_version=data.program_version,
        state=data.state,
    )
    ctx.session.add(machine)
    ctx.audit("create", machine, None)
    return machine


def update_machine(ctx: Ctx, *, serial: str, data: MachineUpdate) -> Machine:
    machine = get_machine(ctx.session, serial=serial)
    before = snapshot(machine)
    for name, value in data.model_dump(exclude_none=True).items():
        setattr(machine, name, value)
    if before != snapshot(machine):
        ctx.audit("update", machine, before)
    return machine
