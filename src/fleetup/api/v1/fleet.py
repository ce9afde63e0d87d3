"""Customers, sites and machines."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import Field
from sqlalchemy.orm import Session

from fleetup.api.access import READERS, GuardedRoute, allow
from fleetup.api.deps import db, write_context
from fleetup.api.schemas import MAX_ROW_ID, PageOut
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.fleet import service
from fleetup.fleet.schemas import (
    CustomerIn,
    CustomerOut,
    CustomerUpdate,
    MachineFilter,
    MachineIn,
    MachineOut,
    MachineUpdate,
    SiteIn,
    SiteOut,
    SiteUpdate,
)

router = APIRouter(route_class=GuardedRoute)
read = allow(*READERS)
manage = allow(Role.manager)


class MachineQuery(MachineFilter):
    """The filter plus the page: ``limit`` rows from ``offset``."""

    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=MAX_ROW_ID)


@router.get("/customers", response_model=list[CustomerOut], dependencies=[read], tags=["fleet"])
def list_customers(session: Session = Depends(db)) -> list[CustomerOut]:
    return [CustomerOut.model_validate(c) for c in service.get_all_customers(session)]


@router.post(
    "/customers",
    response_model=CustomerOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[manage],
    tags=["fleet"],
)
def create_customer(body: CustomerIn, ctx: Ctx = Depends(write_context)) -> CustomerOut:
    customer = service.create_customer(ctx, body)
    ctx.session.commit()
    return CustomerOut.model_validate(customer)


@router.get("/customers/{code}", response_model=CustomerOut, dependencies=[read], tags=["fleet"])
def get_customer(code: str, session: Session = Depends(db)) -> CustomerOut:
    return CustomerOut.model_validate(service.get_customer(session, code=code))


@router.patch(
    "/customers/{code}", response_model=CustomerOut, dependencies=[manage], tags=["fleet"]
)
def update_customer(
    code: str, body: CustomerUpdate, ctx: Ctx = Depends(write_context)
) -> CustomerOut:
    customer = service.update_customer(ctx, code=code, data=body)
    ctx.session.commit()
    return CustomerOut.model_validate(customer)


@router.get("/sites", response_model=list[SiteOut], dependencies=[read], tags=["fleet"])
def list_sites(customer: str | None = None, session: Session = Depends(db)) -> list[SiteOut]:
    sites = service.get_all_sites(session, customer_code=customer)
    return [SiteOut.model_validate(s) for s in sites]


@router.post(
    "/sites",
    response_model=SiteOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[manage],
    tags=["fleet"],
)
def create_site(body: SiteIn, ctx: Ctx = Depends(write_context)) -> SiteOut:
    site = service.create_site(ctx, body)
    ctx.session.commit()
    return SiteOut.model_validate(site)


@router.patch(
    "/sites/{customer_code}/{code}",
    response_model=SiteOut,
    dependencies=[manage],
    tags=["fleet"],
)
def update_site(
    customer_code: str, code: str, body: SiteUpdate, ctx: Ctx = Depends(write_context)
) -> SiteOut:
    site = service.update_site(ctx, customer_code=customer_code, code=code, data=body)
    ctx.session.commit()
    return SiteOut.model_validate(site)


@router.get("/machines", response_model=PageOut[MachineOut], dependencies=[read], tags=["fleet"])
def list_machines(
    query: Annotated[MachineQuery, Query()], session: Session = Depends(db)
) -> PageOut[MachineOut]:
    where = MachineFilter.model_validate(query.model_dump(exclude={"limit", "offset"}))
    page = service.get_all_machines(session, where=where, limit=query.limit, offset=query.offset)
    return PageOut[MachineOut](
        items=[service.machine_out(m) for m in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post(
    "/machines",
    response_model=MachineOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[manage],
    tags=["fleet"],
)
def create_machine(body: MachineIn, ctx: Ctx = Depends(write_context)) -> MachineOut:
    machine = service.create_machine(ctx, body)
    ctx.session.commit()
    return service.machine_out(machine)


@router.get("/machines/{serial}", response_model=MachineOut, dependencies=[read], tags=["fleet"])
def get_machine(serial: str, session: Session = Depends(db)) -> MachineOut:
    return service.machine_out(service.get_machine(session, serial=serial))


@router.patch(
    "/machines/{serial}", response_model=MachineOut, dependencies=[manage], tags=["fleet"]
)
def update_machine(
    serial: str, body: MachineUpdate, ctx: Ctx = Depends(write_context)
) -> MachineOut:
    machine = service.update_machine(ctx, serial=serial, data=body)
    ctx.session.commit()
    return service.machine_out(machine)
