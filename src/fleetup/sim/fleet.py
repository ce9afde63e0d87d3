"""The simulated fleet: its inventory, and what the server needs before the fleet can run.

For 90 machines the fleet is the operator's sample inventory (``examples/inventory.csv``);
for any other size a synthetic inventory of the same shape is generated (customers with a
few sites each, a handful of machines per site, realistic maintenance windows). ``prepare``
does, on the server's own database, what an operator does before a campaign: users and API
tokens, the inventory import, the release, and later one enrollment token per IPC (there is no
route for that yet, so it uses the services in-process).
"""

from __future__ import annotations

import csv
import io
import json
import random
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetup.accounts import service as accounts
from fleetup.accounts.models import User
from fleetup.accounts.schemas import AccountIn
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.errors import NotFound
from fleetup.core.security import Role
from fleetup.devices import service as devices
from fleetup.fleet.inventory import import_inventory
from fleetup.fleet.models import Customer, Machine, Site
from fleetup.releases import service as releases

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "inventory.csv"
SAMPLE_SIZE = 90
RELEASE = "2.0.0"
HEADER = (  # noqa: SIM905 (one line of the CSV header reads better)
    "customer_code,customer_name,customer_existing,contact_name,contact_phone,contact_email,"
    "contact_line_id,site_code,site_name,site_address,site_timezone,maintenance_window,serial,"
    "model,ipc_os,old_system_id,program_version"
).split(",")
WINDOWS = (
    "mon-fri 18:00-22:00; sat 08:00-12:00",
    "mon-fri 19:00-23:00",
    "sat 08:00-18:00",
    "sun 08:00-17:00",
    "mon-fri 12:00-13:30; sat 09:00-17:00",
    "daily 20:00-02:00",
)
MODELS = (("CNC-V850", "Windows 10 IoT Enterprise LTSC 2019"), ("PRS-200", "Debian 11"))


def synthetic_inventory(count: int, *, seed: int = 0) -> bytes:
    """A CSV inventory of ``count`` machines, the same every time for the same arguments."""
    rng = random.Random(f"inventory:{seed}:{count}")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    made = 0
    customer = 0
    while made < count:
        customer += 1
        code = f"SIM{customer:04d}"
        existing = "yes" if rng.random() < 0.85 else "no"
        for site in range(1, rng.randint(1, 3) + 1):
            window = rng.choice(WINDOWS)
            for number in range(1, rng.randint(2, 8) + 1):
                if made == count:
                    break
                model, system = rng.choice(MODELS)
                writer.writerow(
                    [
                        code,
                        f"模擬客戶 {customer:04d}",
                        existing,
                        f"聯絡人 {customer:04d}",
                        f"09{customer % 100:02d}-{customer // 100:03d}-{customer % 1000:03d}",
                        f"contact{customer:04d}@example.com",
                        "",
                        f"S{site}",
                        f"廠區 {site}",
                        f"模擬路 {customer} 號",
                        "Asia/Taipei",
                        window,
                        f"{code}-S{site}-M{number:03d}",
                        model,
                        system,
                        f"OLD-{customer:04d}-{site}-{number}",
                        "1.9.0",
                    ]
                )
                made += 1
    return out.getvalue().encode()


def inventory(count: int, *, seed: int = 0) -> bytes:
    if count == SAMPLE_SIZE and SAMPLE.is_file():
        return SAMPLE.read_bytes()
    return synthetic_inventory(count, seed=seed)


@dataclass(frozen=True)
class MachineInfo:
    serial: str
    customer_code: str
    customer_existing: bool
    site: str


@dataclass(frozen=True)
class Prepared:
    """What the simulated actors need: who they are and what they may do."""

    admin_token: str
    manager_token: str
    on_call_token: str
    technicians: dict[str, str]
    machines: list[MachineInfo]
    release: str


def _user(ctx: Ctx, username: str, role: Role) -> str:
    try:
        user = accounts.get_user(ctx.session, username=username)
    except NotFound:
        user = accounts.create_token_user(
            ctx, AccountIn(username=username, role=role, display_name=username)
        )
    _, token = accounts.create_token(ctx, user=user, name="simulator")
    return token


def _package(directory: Path, version: str) -> Path:
    path = directory / f"ipc-{version}.tar.gz"
    entries = {
        "manifest.json": json.dumps({"version": version, "models": [], "os": [], "hooks": {}}),
        "bin/fleetup-ipc": "#!/bin/sh\necho fleetup ipc program\n",
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, text in entries.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            archive.addfile(info, io.BytesIO(data))
    return path


def ensure_release(ctx: Ctx, settings: Settings, version: str = RELEASE) -> None:
    """Add the small release the fleet upgrades to, unless it is there already."""
    try:
        releases.get(ctx.session, version=version)
        return
    except NotFound:
        pass
    with tempfile.TemporaryDirectory() as directory:
        releases.add(ctx, settings, path=_package(Path(directory), version), version=version)


def machines_of(session: Session) -> list[MachineInfo]:
    rows = session.execute(
        select(Machine.serial, Customer.code, Customer.is_existing, Site)
        .join(Site, Machine.site_id == Site.id)
        .join(Customer, Site.customer_id == Customer.id)
        .order_by(Machine.id)
    ).all()
    return [
        MachineInfo(
            serial=serial,
            customer_code=code,
            customer_existing=bool(existing),
            site=f"{code}/{site.code}",
        )
        for serial, code, existing, site in rows
    ]


def enrollment_token(ctx: Ctx, *, serial: str) -> str:
    """A one-time token for the IPC of ``serial`` (tokens expire: made when it is installed)."""
    token = devices.create_enrollment_token(ctx, serial=serial)
    ctx.session.commit()
    return token


def technician_names(count: int) -> list[str]:
    return [f"sim-tech-{number:03d}" for number in range(1, max(2, -(-count // 15)) + 1)]


def prepare(
    ctx: Ctx,
    settings: Settings,
    *,
    count: int,
    seed: int,
    technicians: list[str] | None = None,
    load_inventory: bool = True,
) -> Prepared:
    """Users, tokens, inventory, release and enrollment tokens; the caller commits."""
    if load_inventory:
        import_inventory(ctx, inventory(count, seed=seed))
    ensure_release(ctx, settings)
    machines = machines_of(ctx.session)[:count]
    names = technicians or technician_names(len(machines))
    # The campaign books every active technician; the simulator works all their visits.
    others = ctx.session.scalars(
        select(User.username).where(User.role == Role.technician, User.active.is_(True))
    )
    return Prepared(
        admin_token=_user(ctx, "sim-admin", Role.admin),
        manager_token=_user(ctx, "sim-manager", Role.manager),
        on_call_token=_user(ctx, "sim-oncall", Role.on_call),
        technicians={name: _user(ctx, name, Role.technician) for name in {*names, *others}},
        machines=machines,
        release=RELEASE,
    )
