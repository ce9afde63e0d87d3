"""The inventory import: a CSV or XLSX fleet list in, customers, sites and machines out.

One row per machine; the customer and site columns repeat on every row of that customer or
site. The import validates every row first, against the file itself (``inventory_rows``) and
then against the database (here): customers that would be created without a name, unknown
sites, machines registered at another site. When anything is wrong the whole file is refused
with every problem, naming row and column, and nothing is written. Otherwise the file is
applied through the fleet services in the caller's transaction, touching only what differs:
importing the same file twice changes nothing and writes no audit events the second time.

Rules a user can rely on:
- A blank cell never erases anything: it means "not stated", so a later row may leave the
  customer's or site's columns blank. Rows that state a value must agree.
- A site is created only by rows that give its ``site_name``; otherwise it must exist already.
- Machines are never moved between sites, and an import deletes nothing.
- Contacts are matched by name within their customer; new names are added, others updated.
- A new site without ``site_timezone`` is in Asia/Taipei; a new customer without
  ``customer_existing`` counts as existing (chart 2's B), as in the API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from fleetup.core.context import Ctx
from fleetup.fleet import service
from fleetup.fleet.inventory_problems import N_, InventoryRefused
from fleetup.fleet.inventory_read import COLUMNS, Limits, read_sheet
from fleetup.fleet.inventory_rows import Described, FleetFile, MachineRow, Progress, read_rows
from fleetup.fleet.models import Contact, Customer, Machine, Site
from fleetup.fleet.schemas import (
    ContactIn,
    CustomerIn,
    CustomerUpdate,
    ImportReport,
    ImportTally,
    MachineIn,
    MachineUpdate,
    SiteIn,
    SiteUpdate,
)

__all__ = ["ImportReport", "InventoryRefused", "Limits", "Progress", "import_inventory"]

_CHUNK = 500  # keeps IN (...) lists well under every database's parameter limit
_COLUMN_ORDER = {name: index for index, name in enumerate(COLUMNS)}
_KINDS = ("customers", "contacts", "sites", "machines")


def import_inventory(
    ctx: Ctx,
    data: bytes,
    *,
    dry_run: bool = False,
    limits: Limits | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Validate an inventory file and, unless ``dry_run``, apply it in ``ctx``'s transaction.

    The caller commits; nothing is committed here, so a failure leaves the database as it was.

    Args:
        ctx: the write context (its session, actor and clock are used for every change).
        data: the file's bytes, CSV (UTF-8, Big5 or UTF-16) or XLSX.
        dry_run: validate and count what would change, but write nothing.
        limits: caps on file size, rows and problems listed.
        progress: told how far validation and applying have come.

    Returns:
        How many customers, contacts, sites and machines were (or would be) created, updated
        or left unchanged.

    Raises:
        InventoryRefused: the file cannot be read or any row is invalid; lists every problem,
            renderable in zh-TW or English. Nothing was written.
    """
    limits = limits or Limits()
    fleet = read_rows(read_sheet(data, limits=limits), progress)
    steps = _steps(ctx, fleet)
    if fleet.problems:
        fleet.problems.sort(key=lambda p: (p.row or 0, _COLUMN_ORDER.get(p.column, -1)))
        raise InventoryRefused(fleet.problems, max_listed=limits.max_problems)
    if not dry_run:
        pending = [step.apply for step in steps if step.apply is not None]
        for done, apply in enumerate(pending, start=1):
            apply(ctx)
            if progress is not None:
                progress("apply", done, len(pending))
        ctx.session.flush()
    tallies = {kind: ImportTally() for kind in _KINDS}
    for step in steps:
        tally = tallies[step.kind]
        setattr(tally, step.outcome, getattr(tally, step.outcome) + 1)
    return ImportReport(rows=fleet.rows, dry_run=dry_run, **tallies)


@dataclass(frozen=True)
class _Step:
    """One thing the import does (or finds already done): ``apply`` is None when unchanged."""

    kind: str  # customers, contacts, sites or machines
    outcome: str  # created, updated or unchanged
    apply: Callable[[Ctx], object] | None = None


def _steps(ctx: Ctx, fleet: FleetFile) -> list[_Step]:
    """The file against the database: steps to apply, and problems added to ``fleet``."""
    customers: dict[str, Customer] = {}
    for codes in _chunks(sorted(fleet.customers)):
        query = (
            select(Customer)
            .options(selectinload(Customer.contacts), selectinload(Customer.sites))
            .where(Customer.code.in_(codes))
        )
        customers.update((customer.code, customer) for customer in ctx.session.scalars(query))
    machines: dict[str, Machine] = {}
    for serials in _chunks(sorted(fleet.machines)):
        machine_query = (
            select(Machine)
            .options(joinedload(Machine.site).joinedload(Site.customer))
            .where(Machine.serial.in_(serials))
        )
        machines.update((machine.serial, machine) for machine in ctx.session.scalars(machine_query))

    steps: list[_Step] = []
    for code, customer in fleet.customers.items():
        steps += _customer_steps(fleet, code, customer, customers.get(code))
    for (customer_code, code), site in fleet.sites.items():
        owner = customers.get(customer_code)
        known = next((s for s in owner.sites if s.code == code), None) if owner else None
        steps += _site_steps(fleet, customer_code, code, site, known)
    for machine in fleet.machines.values():
        steps += _machine_steps(fleet, machine, machines.get(machine.serial))
    return steps


def _customer_steps(
    fleet: FleetFile, code: str, customer: Described, known: Customer | None
) -> list[_Step]:
    name, existing = customer.text("customer_name"), customer.get("customer_existing")
    contacts = fleet.contacts.get(code, {})
    if known is None:
        if name is None:
            for number in customer.rows:
                fleet.problem(
                    number,
                    "customer_name",
                    N_(
                        "Customer {code} is not in fleetup yet; "
                        "give its customer_name to create it."
                    ),
                    code=code,
                )
            return []
        new = CustomerIn(
            code=code,
            name=name,
            is_existing=existing if isinstance(existing, bool) else True,
            contacts=[_contact_in(n, contact, None) for n, contact in contacts.items()],
        )
        created = _Step("customers", "created", partial(service.create_customer, data=new))
        return [created] + [_Step("contacts", "created") for _ in contacts]

    changes = CustomerUpdate(
        name=name if name not in (None, known.name) else None,
        is_existing=(
            existing if isinstance(existing, bool) and existing != known.is_existing else None
        ),
    )
    steps = [_update("customers", changes, partial(service.update_customer, code=code))]
    by_name = {c.name: c for c in reversed(known.contacts)}  # the first of a name wins
    for contact_name, contact in contacts.items():
        current = by_name.get(contact_name)
        wanted = _contact_in(contact_name, contact, current)
        if current is None:
            add = partial(service.add_contact, customer_code=code, data=wanted)
            steps.append(_Step("contacts", "created", add))
        elif (wanted.phone, wanted.email or "", wanted.line_id) == (
            current.phone,
            current.email,
            current.line_id,
        ):
            steps.append(_Step("contacts", "unchanged"))
        else:
            update = partial(
                service.update_contact, customer_code=code, name=contact_name, data=wanted
            )
            steps.append(_Step("contacts", "updated", update))
    return steps


def _site_steps(
    fleet: FleetFile, customer_code: str, code: str, site: Described, known: Site | None
) -> list[_Step]:
    name, address = site.text("site_name"), site.text("site_address")
    timezone = site.text("site_timezone")
    stated_windows = site.get("maintenance_window")
    windows = stated_windows if isinstance(stated_windows, list) else None
    if known is None:
        if name is None:
            for number in site.rows:
                fleet.problem(
                    number,
                    "site_code",
                    N_(
                        "Unknown site {site} of customer {customer}: it is not in fleetup "
                        "and no row gives its site_name."
                    ),
                    code,
                    site=code,
                    customer=customer_code,
                )
            return []
        new = SiteIn(
            customer_code=customer_code,
            code=code,
            name=name,
            address=address or "",
            timezone=timezone or "Asia/Taipei",
            maintenance_windows=windows or [],
        )
        return [_Step("sites", "created", partial(service.create_site, data=new))]
    same_windows = windows is None or [w.model_dump() for w in windows] == known.maintenance_windows
    changes = SiteUpdate(
        name=name if name not in (None, known.name) else None,
        address=address if address not in (None, known.address) else None,
        timezone=timezone if timezone not in (None, known.timezone) else None,
        maintenance_windows=None if same_windows else windows,
    )
    apply = partial(service.update_site, customer_code=customer_code, code=code)
    return [_update("sites", changes, apply)]


def _machine_steps(fleet: FleetFile, machine: MachineRow, known: Machine | None) -> list[_Step]:
    stated = machine.values
    # Without its site, or model and OS for a new machine, the row is already reported.
    if machine.site is None:
        return []
    customer_code, site_code = machine.site
    if known is None:
        if "model" not in stated or "ipc_os" not in stated:
            return []
        new = MachineIn(
            serial=machine.serial,
            customer_code=customer_code,
            site_code=site_code,
            model=stated["model"],
            ipc_os=stated["ipc_os"],
            old_system_id=stated.get("old_system_id", ""),
            program_version=stated.get("program_version", ""),
        )
        return [_Step("machines", "created", partial(service.create_machine, data=new))]
    if (known.site.customer.code, known.site.code) != machine.site:
        fleet.problem(
            machine.row,
            "serial",
            N_(
                "Machine {serial} is registered at site {site} of customer {customer}; "
                "an import does not move machines."
            ),
            machine.serial,
            serial=machine.serial,
            site=known.site.code,
            customer=known.site.customer.code,
        )
        return []
    changes = MachineUpdate.model_validate(
        {column: value for column, value in stated.items() if getattr(known, column) != value}
    )
    return [_update("machines", changes, partial(service.update_machine, serial=machine.serial))]


def _contact_in(name: str, contact: Described, current: Contact | None) -> ContactIn:
    """The contact as it should be: the stated cells, else what fleetup holds, else blank."""

    def pick(column: str, held: str) -> str:
        stated = contact.text(column)
        return stated if stated is not None else held

    return ContactIn(
        name=name,
        phone=pick("contact_phone", current.phone if current else ""),
        email=pick("contact_email", current.email if current else "") or None,
        line_id=pick("contact_line_id", current.line_id if current else ""),
    )


def _update(
    kind: str,
    changes: CustomerUpdate | SiteUpdate | MachineUpdate,
    apply: Callable[..., object],
) -> _Step:
    """An update step when ``changes`` holds anything, else an unchanged one."""
    if not changes.model_dump(exclude_none=True):
        return _Step(kind, "unchanged")
    return _Step(kind, "updated", partial(apply, data=changes))


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
