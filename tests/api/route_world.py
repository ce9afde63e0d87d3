"""A small world with one of everything a route can name, for the route-level security tests.

``build_world`` arranges it through the services, as the product itself would: one account per
role (each with a spare API token and a notification channel of its own), a customer with a
contact, a site, a release, a draft campaign, and machines standing where the routes need them:

- ``M_ACCEPT``: its upgrade waits at the acceptance step T (an acceptance link is out);
- ``M_SURVEY``: its upgrade completed and its satisfaction survey is open;
- ``M_SIGNED``: its acceptance is signed (a certificate link is out);
- ``M_NOTICE``: a visit is announced (a notice link is out), its upgrade has started, and it
  has an open problem and an incident with a review task;
- ``M_DEVICE``: an enrolled IPC with a queued deployment and a backup upload begun;
- ``M_SPARE``: never enrolled; one enrollment token per caller of the matrix waits for it.

``table_rows`` reads every table, so a test can prove that a refused request changed nothing;
``route_calls.py`` knows how to call each route as each caller, in this world.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from PIL import Image, ImageDraw
from sqlalchemy import Engine, select

from customers.customer_support import walk
from fleetup import tables
from fleetup.accounts import service as accounts
from fleetup.accounts.schemas import UserIn
from fleetup.api.deps import Server
from fleetup.campaigns import service as campaigns
from fleetup.campaigns.schemas import CampaignIn
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.customers import acceptances, notices, surveys
from fleetup.customers.links import Links, link_path
from fleetup.devices import backups
from fleetup.devices import service as devices
from fleetup.devices.schemas import BackupIn, DeploymentIn
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import ContactIn, CustomerIn, MachineIn, SiteIn
from fleetup.notify import service as notify
from fleetup.operations import incidents, problems
from fleetup.operations.incidents import Escalation
from fleetup.releases import service as releases
from fleetup.upgrades import service as upgrades
from releases.release_helpers import make_package
from support import Account

ROLE_PRINCIPALS = tuple(role.value for role in Role)
#: Everyone who may knock: each role, nobody at all, and an enrolled IPC.
PRINCIPALS = (*ROLE_PRINCIPALS, "anonymous", "device")

CUSTOMER = "RW"
SITE = "S1"
M_ACCEPT, M_SURVEY, M_SIGNED = "RW-ACCEPT", "RW-SURVEY", "RW-SIGNED"
M_NOTICE, M_DEVICE, M_SPARE = "RW-NOTICE", "RW-DEVICE", "RW-SPARE"
RELEASE = "2.0.0"
LOGIN_USER, LOGIN_PASSWORD = "rw-login", "rw-login-password-1"
SUBSCRIBER = "rw-subscriber"
CHANNEL = "json://127.0.0.1:9/route-world"

# Values that only the database holds (no path or body names them): a refusal must show none.
CUSTOMER_NAME = "路由世界精機股份有限公司"
CONTACT_EMAIL = "rw-contact@example.com"
SITE_ADDRESS = "台中市路由區世界路 1 號"
PROBLEM_SUMMARY = "rw-problem: spindle display freezes"
INCIDENT_TITLE = "rw-incident: site link down"
CANARIES = (CUSTOMER_NAME, CONTACT_EMAIL, SITE_ADDRESS, PROBLEM_SUMMARY, INCIDENT_TITLE)


def signature_png() -> bytes:
    """A small, well-formed PNG of a scribble, as signature_pad would send."""
    image = Image.new("RGB", (300, 120), "white")
    ImageDraw.Draw(image).line([(10, 100), (80, 20), (150, 90), (290, 15)], fill="black", width=4)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def signature_data_url() -> str:
    return "data:image/png;base64," + base64.b64encode(signature_png()).decode()


@dataclass
class DeviceKey:
    """An enrolled IPC as the agent holds it."""

    serial: str
    device_id: str
    credential: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}


@dataclass
class World:
    """What ``build_world`` arranged, by name."""

    accounts: dict[str, Account]
    spare_token_ids: dict[str, int]
    subscription_ids: dict[str, int]
    device: DeviceKey
    enrollment_tokens: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)


def _people(ctx: Ctx) -> tuple[dict[str, Account], dict[str, int], dict[str, int]]:
    """A user per role with its API token, a spare token and a channel; and two more users."""
    made: dict[str, Account] = {}
    spare: dict[str, int] = {}
    channels: dict[str, int] = {}
    for role in Role:
        name = f"rw-{role.value.replace('_', '-')}"
        password = f"{name}-password-1"
        user = accounts.create_user(ctx, UserIn(username=name, password=password, role=role))
        _, token = accounts.create_token(ctx, user=user, name="matrix")
        spare_token, _ = accounts.create_token(ctx, user=user, name="spare")
        ctx.session.flush()
        made[role.value] = Account(username=name, password=password, token=token, role=role)
        spare[role.value] = spare_token.id
        channels[role.value] = notify.add_subscription(
            ctx, username=name, url=CHANNEL, language="en"
        ).id
    accounts.create_user(
        ctx, UserIn(username=LOGIN_USER, password=LOGIN_PASSWORD, role=Role.viewer)
    )
    accounts.create_user(
        ctx, UserIn(username=SUBSCRIBER, password="rw-subscriber-password-1", role=Role.viewer)
    )
    channels[SUBSCRIBER] = notify.add_subscription(
        ctx, username=SUBSCRIBER, url=CHANNEL, language="en"
    ).id
    return made, spare, channels


def _fleet(ctx: Ctx) -> None:
    fleet.create_customer(
        ctx,
        CustomerIn(
            code=CUSTOMER,
            name=CUSTOMER_NAME,
            contacts=[ContactIn(name="王小明", email=CONTACT_EMAIL)],
        ),
    )
    fleet.create_site(
        ctx, SiteIn(customer_code=CUSTOMER, code=SITE, name="台中廠", address=SITE_ADDRESS)
    )
    for serial in (M_ACCEPT, M_SURVEY, M_SIGNED, M_NOTICE, M_DEVICE, M_SPARE):
        fleet.create_machine(
            ctx,
            MachineIn(
                serial=serial,
                model="CNC-500",
                ipc_os="linux",
                customer_code=CUSTOMER,
                site_code=SITE,
            ),
        )


def build_world(parts: Server, work_dir: Path) -> World:
    """Arrange the world in ``parts``' database (empty and migrated); commits."""
    with parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=parts.clock)
        people, spare, channels = _people(ctx)
        _fleet(ctx)
        session.commit()
        signer = parts.signer
        links = Links(signer, parts.settings.effective_base_url)

        release = releases.add(
            ctx,
            parts.settings,
            path=make_package(work_dir / "rw-ipc.tar.gz", version=RELEASE, files={"run": b"x"}),
            version=RELEASE,
        )
        campaign = campaigns.create_from_template(
            ctx,
            parts.library,
            CampaignIn(name="rw-campaign", release_version=RELEASE, starts_on=date(2026, 3, 2)),
        )
        session.flush()
        activity = campaigns.activities_of(session, campaign_id=campaign.id)[0]

        at_t = upgrades.start_upgrade(ctx, parts.library, serial=M_ACCEPT)
        walk(ctx, parts.library, at_t.id, until="T")
        done = upgrades.start_upgrade(ctx, parts.library, serial=M_SURVEY)
        walk(ctx, parts.library, done.id, until="V")
        survey_path = surveys.open_survey(ctx, serial=M_SURVEY, library=parts.library, links=links)
        loop = surveys.survey_instance(
            session, machine_id=fleet.get_machine(session, serial=M_SURVEY).id
        )
        assert loop is not None
        signed_upgrade = upgrades.start_upgrade(ctx, parts.library, serial=M_SIGNED)
        walk(ctx, parts.library, signed_upgrade.id, until="T")
        signed = acceptances.sign(
            ctx,
            parts.library,
            serial=M_SIGNED,
            signer_name="陳大文",
            png=signature_png(),
            via="technician",
            links=links,
        )

        noticed = upgrades.start_upgrade(ctx, parts.library, serial=M_NOTICE)
        visit_start = parts.clock.now() + timedelta(days=5)
        notices.schedule_notice(
            ctx,
            serial=M_NOTICE,
            visit_start=visit_start,
            visit_end=visit_start + timedelta(hours=2),
            expected_minutes=90,
            technician=people[Role.technician.value].username,
        )
        session.flush()
        visit = notices.get_all_visits(session, serial=M_NOTICE)[-1]
        problem = problems.open_problem(
            ctx, parts.library, serial=M_NOTICE, type="user", summary=PROBLEM_SUMMARY
        )
        incident = incidents.open_incident(
            ctx,
            parts.library,
            Escalation(promise=timedelta(minutes=15)),
            kind="system",
            title=INCIDENT_TITLE,
            subject_kind="machine",
            subject_ref=M_NOTICE,
            site=SITE,
        )
        session.flush()
        task = incidents.add_task(
            ctx,
            incident_id=incident.id,
            title="rw-task",
            owner="rw-manager",
            due_on=date(2026, 3, 20),
        )

        enrolling = devices.create_enrollment_token(ctx, serial=M_DEVICE)
        caller, credential = devices.enroll(
            ctx, token=enrolling, serial=M_DEVICE, hardware={"os": "linux"}
        )
        deployment = devices.deploy(
            ctx,
            parts.library,
            serial=M_DEVICE,
            data=DeploymentIn(version=RELEASE),
            base_url=parts.settings.effective_base_url,
        )
        upload = backups.create(
            ctx,
            caller=caller,
            data=BackupIn(action_id=deployment.action_id, sha256="1" * 64, size=4),
        )
        spare_tokens = {
            who: devices.create_enrollment_token(ctx, serial=M_SPARE) for who in PRINCIPALS
        }
        session.flush()
        world = World(
            accounts=people,
            spare_token_ids=spare,
            subscription_ids=channels,
            device=DeviceKey(M_DEVICE, caller.public_id, credential),
            enrollment_tokens=spare_tokens,
            ids={
                "campaign_id": str(campaign.id),
                "activity": activity.code,
                "wave": "D1",
                "instance_id": str(noticed.id),
                "loop_instance_id": str(loop.id),
                "problem_id": str(problem.id),
                "incident_id": str(incident.id),
                "task_id": str(task.id),
                "acceptance_id": str(signed.id),
                "action_id": deployment.action_id,
                "backup_id": upload.backup_id,
                "release_sha256": release.sha256,
                "release_target": release.target,
            },
            links={
                "acceptance": acceptances.link_for(session, signer=signer, serial=M_ACCEPT),
                "survey": survey_path,
                "notice": link_path(signer, "notice", visit.id),
                "certificate": acceptances.certificate_link(signer, signed),
            },
        )
        session.commit()
    return world


def token_of(path: str) -> str:
    """The token of a customer link's path (``/s/<token>`` gives ``<token>``)."""
    return path.split("/", 2)[2]


def table_rows(engine: Engine) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table, as text, in primary-key order: a fingerprint of the data."""
    found: dict[str, list[tuple[str, ...]]] = {}
    with engine.connect() as connection:
        for table in tables.metadata.sorted_tables:
            order = [column for column in table.primary_key.columns] or list(table.columns)
            rows = connection.execute(select(table).order_by(*order)).all()
            found[table.name] = [tuple(str(value) for value in row) for row in rows]
    return found


def changed_tables(
    before: dict[str, list[tuple[str, ...]]], after: dict[str, list[tuple[str, ...]]]
) -> list[str]:
    """The names of the tables whose rows differ between two fingerprints."""
    return sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )
