"""The TUF repository, read-only, for devices: metadata and targets (docs/agent.md)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fleetup.api.access import GuardedRoute
from fleetup.api.deps import Server, db, server
from fleetup.api.device.auth import device
from fleetup.api.device.ranges import blob_response
from fleetup.core.errors import Conflict, NotFound
from fleetup.releases import service as releases
from fleetup.releases.blobs import is_sha256

log = logging.getLogger(__name__)
router = APIRouter(prefix="/device/v1/tuf", route_class=GuardedRoute, tags=["device"])


def refresh(parts: Server) -> None:
    """Sign the timestamp (and other online roles) again when close to expiry.

    A missing online key must not stop the server: it is logged, and devices see the
    metadata as it is (python-tuf refuses it once expired, which is the safe side).
    """
    try:
        releases.tuf_repository(parts.settings).refresh_timestamp(parts.clock.now())
    except Conflict as error:
        log.error("cannot sign the TUF timestamp again: %s", error.message)


@router.get("/metadata/{name}", dependencies=[device()])
def metadata(name: str, request: Request) -> Response:
    parts = server(request)
    repository = releases.tuf_repository(parts.settings)
    if name == "timestamp.json":
        refresh(parts)
    path = repository.metadata_file(name)
    if path is None:
        raise NotFound(f"no TUF metadata {name}")
    return Response(path.read_bytes(), media_type="application/json")


@router.get("/targets/{name}", dependencies=[device()])
def target(name: str, request: Request, session: Session = Depends(db)) -> Response:
    digest, _, target_name = name.partition(".")
    if (
        not is_sha256(digest)
        or releases.get_by_target(session, sha256=digest, target=target_name) is None
    ):
        raise NotFound(f"no TUF target {name}")
    session.rollback()
    store = releases.blob_store(server(request).settings)
    return blob_response(
        store, digest, request.headers.get("range"), media_type="application/octet-stream"
    )
