"""The inventory import over HTTP: a manager uploads the fleet list as CSV or XLSX.

The answer is the import report, or a 422 problem whose ``errors`` name each row and column,
in the language asked for by ``lang`` or ``Accept-Language``; a refused file changes nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from starlette.exceptions import HTTPException

from fleetup.api.access import GuardedRoute, allow
from fleetup.api.deps import server, write_context
from fleetup.core.context import Ctx
from fleetup.core.i18n import gettext_for, negotiate, normalise
from fleetup.core.security import Role
from fleetup.fleet.inventory import InventoryRefused, Limits, import_inventory
from fleetup.fleet.inventory_problems import N_
from fleetup.fleet.schemas import ImportReport

router = APIRouter(route_class=GuardedRoute, tags=["fleet"])
manage = allow(Role.manager)

_TOO_LARGE = N_("The file is larger than {limit} MB; split it into smaller files.")


@router.post(
    "/inventory/import",
    response_model=ImportReport,
    dependencies=[manage],
    responses={
        413: {"description": "The file is larger than the import accepts."},
        422: {"description": "The file was refused; ``errors`` lists row, field and message."},
    },
)
def import_machines(
    request: Request,
    file: UploadFile = File(..., description="CSV (UTF-8 or Big5) or XLSX, one row per machine."),
    dry_run: bool = Query(False, description="Check the file and count changes; write nothing."),
    lang: str | None = Query(
        None, description="zh-TW or en for the messages; default from Accept-Language."
    ),
    ctx: Ctx = Depends(write_context),
) -> ImportReport:
    """Import customers, sites and machines from a fleet list; all rows or none."""
    settings = server(request).settings
    language = normalise(lang) or negotiate(
        request.headers.get("accept-language"), settings.default_language
    )
    limits = Limits()
    if file.size is not None and file.size > limits.max_bytes:
        message = gettext_for(language)(_TOO_LARGE).format(limit=limits.max_bytes // 2**20)
        raise HTTPException(413, message)
    data = file.file.read(limits.max_bytes + 1)
    try:
        report = import_inventory(ctx, data, dry_run=dry_run, limits=limits)
    except InventoryRefused as refused:
        ctx.session.rollback()
        raise refused.in_language(language) from refused
    if dry_run:
        ctx.session.rollback()
    else:
        ctx.session.commit()
    return report
