"""``/api/v1/machines/{serial}/deployments``: a manager sends a release to a machine's IPC."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, status
from sqlalchemy.orm import Session

from fleetup.api.access import READERS, GuardedRoute, allow
from fleetup.api.deps import db, server, write_context
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.devices import service as devices
from fleetup.devices.schemas import DeploymentIn, DeploymentOut

router = APIRouter(prefix="/api/v1", route_class=GuardedRoute, tags=["deployments"])


@router.post(
    "/machines/{serial}/deployments",
    response_model=DeploymentOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(Role.manager)],
)
def deploy(
    serial: str, body: DeploymentIn, request: Request, ctx: Ctx = Depends(write_context)
) -> DeploymentOut:
    """Start (or reuse) the machine's upgrade and queue the release for its IPC."""
    parts = server(request)
    out = devices.deploy(
        ctx, parts.library, serial=serial, data=body, base_url=parts.settings.effective_base_url
    )
    ctx.session.commit()
    return out


@router.get(
    "/machines/{serial}/deployments",
    response_model=list[DeploymentOut],
    dependencies=[allow(*READERS)],
)
def list_deployments(serial: str, session: Session = Depends(db)) -> list[DeploymentOut]:
    return devices.deployments_of(session, serial=serial)
