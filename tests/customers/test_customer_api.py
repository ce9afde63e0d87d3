"""The customer's side over HTTP: notices, acceptance signatures, surveys, refused links."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from datetime import datetime, timedelta

from customer_support import make_machine, start, walk
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from sqlalchemy import select

from fleetup.api.deps import Server
from fleetup.core.audit import AuditEvent
from fleetup.core.clock import ManualClock
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.customers import scheduled
from fleetup.customers.models import Acceptance, SiteVisit
from fleetup.notify.models import Notification
from fleetup.upgrades import service as upgrades
from support import Account


def signature_png() -> bytes:
    image = Image.new("RGB", (300, 120), "white")
    ImageDraw.Draw(image).line([(10, 100), (80, 20), (150, 90), (290, 15)], fill="black", width=4)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def test_a_notice_goes_out_three_days_ahead_and_a_reminder_the_day_before(
    ctx: Ctx,
    server_parts: Server,
    client: TestClient,
    clock: ManualClock,
    make_account: Callable[..., Account],
) -> None:
    serial = make_machine(ctx)
    manager = make_account(Role.manager)
    visit_start = clock.now() + timedelta(days=5)
    planned = client.post(
        "/api/v1/visits",
        json={
            "serial": serial,
            "visit_start": visit_start.isoformat(),
            "visit_end": (visit_start + timedelta(hours=2)).isoformat(),
            "expected_minutes": 65,
            "technician": "tech-lin",
        },
        headers=manager.headers,
    )
    assert planned.status_code == 201, planned.text
    assert planned.json()["notice_due_at"].startswith(
        (visit_start - timedelta(days=3)).date().isoformat()
    )

    assert scheduled.send_due_notices(server_parts) == 0
    clock.advance(timedelta(days=2, hours=1))
    assert scheduled.send_due_notices(server_parts) == 1
    clock.advance(timedelta(days=2))
    assert scheduled.send_due_notices(server_parts) == 1
    assert scheduled.send_due_notices(server_parts) == 0
    ctx.session.expire_all()
    keys = set(ctx.session.scalars(select(Notification.key)).all())
    visit = ctx.session.scalars(select(SiteVisit)).one()
    assert {f"notice:{visit.id}", f"reminder:{visit.id}"} <= keys
    assert visit.status == "reminded"

    body = ctx.session.scalars(
        select(Notification.body).where(Notification.key == f"notice:{visit.id}")
    ).first()
    assert body is not None and "/n/" in body
    token = body.split("/n/")[1].split()[0]
    shown = client.get(f"/api/v1/public/notices/{token}")
    assert shown.status_code == 200 and shown.json()["expected_minutes"] == 65
    answered = client.post(
        f"/api/v1/public/notices/{token}", json={"answer": "another_date", "note": "週五較方便"}
    )
    assert answered.status_code == 200
    again = client.post(f"/api/v1/public/notices/{token}", json={"answer": "confirmed"})
    assert again.status_code == 410
    listed = client.get(f"/api/v1/visits?serial={serial}", headers=manager.headers).json()
    assert (listed[0]["answer"], listed[0]["answer_note"]) == ("another_date", "週五較方便")


def test_an_on_site_signature_finishes_t_and_is_chained_into_the_audit_trail(
    ctx: Ctx, server_parts: Server, client: TestClient, make_account: Callable[..., Account]
) -> None:
    serial = make_machine(ctx)
    tech = make_account(Role.technician)
    instance_id = start(ctx, server_parts.library, serial)
    walk(ctx, server_parts.library, instance_id, until="T")
    png = signature_png()

    bad = client.post(
        f"/api/v1/machines/{serial}/acceptances",
        json={"signer_name": "王小明", "signature": data_url(b"GIF89a not a png")},
        headers=tech.headers,
    )
    assert bad.status_code == 422
    assert ctx.session.scalars(select(Acceptance)).all() == []

    signed = client.post(
        f"/api/v1/machines/{serial}/acceptances",
        json={"signer_name": "王小明", "signature": data_url(png)},
        headers=tech.headers,
    )
    assert signed.status_code == 201, signed.text
    out = signed.json()
    assert out["signature_sha256"] == hashlib.sha256(png).hexdigest()
    assert out["machines"][0]["tests"]["passed"] is True
    ctx.session.expire_all()
    assert upgrades.get(ctx.session, instance_id=instance_id).current_node == "U"
    event = ctx.session.scalars(
        select(AuditEvent).where(AuditEvent.entity_type == "acceptances")
    ).one()
    assert event.after is not None and out["signature_sha256"] in event.note
    signed_on = datetime.fromisoformat(out["signed_at"])
    assert out["number"] == f"ACC-{signed_on:%Y%m%d}-{out['id']:05d}"
    assert event.after["number"] == out["number"]  # the trail holds the number it was given

    pdf = client.get(out["pdf"], headers=tech.headers)
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-") and b"%%EOF" in pdf.content[-1024:]


def test_a_signature_link_works_once_then_says_it_was_used(
    ctx: Ctx, server_parts: Server, client: TestClient, make_account: Callable[..., Account]
) -> None:
    serial = make_machine(ctx)
    tech = make_account(Role.technician)
    instance_id = start(ctx, server_parts.library, serial)
    walk(ctx, server_parts.library, instance_id, until="T")
    link = client.post(f"/api/v1/machines/{serial}/acceptance-link", headers=tech.headers)
    token = link.json()["link"].removeprefix("/a/")
    payload = {"signer_name": "Chen", "signature": data_url(signature_png())}

    assert client.post(f"/api/v1/public/acceptances/{token}", json=payload).status_code == 201
    used = client.post(f"/api/v1/public/acceptances/{token}", json=payload)
    assert used.status_code == 410
    page = client.get(f"/a/{token}", headers={"accept-language": "zh-TW"})
    assert page.status_code == 410 and "此連結已使用過" in page.text
    tampered = ("B" if token[0] == "A" else "A") + token[1:]
    forged = client.get(f"/a/{tampered}", headers={"accept-language": "en"})
    assert forged.status_code == 403 and "This link is not valid" in forged.text
    assert len(ctx.session.scalars(select(Acceptance)).all()) == 1


def test_surveys_answer_over_json_and_the_manager_finds_the_current_link(
    ctx: Ctx,
    server_parts: Server,
    client: TestClient,
    clock: ManualClock,
    make_account: Callable[..., Account],
) -> None:
    serial = make_machine(ctx)
    manager = make_account(Role.manager)
    instance_id = start(ctx, server_parts.library, serial)
    walk(ctx, server_parts.library, instance_id, until="V")
    assert scheduled.open_due_surveys(server_parts) == 1

    listed = client.get(f"/api/v1/surveys?serial={serial}", headers=manager.headers).json()
    token = listed[0]["link"].removeprefix("/s/")
    assert client.post(f"/api/v1/public/surveys/{token}", json={"score": 11}).status_code == 422
    answered = client.post(f"/api/v1/public/surveys/{token}", json={"score": 6, "comment": "慢"})
    assert answered.status_code == 200
    assert client.post(f"/api/v1/public/surveys/{token}", json={"score": 9}).status_code == 410
    loop = client.get(f"/api/v1/surveys?serial={serial}", headers=manager.headers).json()[0]
    assert (loop["loop_node"], loop["link"]) == ("G", None)

    for kind, owner in (("understanding", ""), ("improvement", "tech-lin"), ("retest", "")):
        made = client.post(
            f"/api/v1/surveys/loops/{loop['instance_id']}/follow-ups",
            json={"kind": kind, "note": f"{kind} done", "owner": owner},
            headers=manager.headers,
        )
        assert made.status_code == 201, made.text
    second = client.get(f"/api/v1/surveys?serial={serial}", headers=manager.headers).json()[-1]
    clock.advance(timedelta(days=15))
    expired = client.post(f"/api/v1/public/surveys/{second['link'][3:]}", json={"score": 9})
    assert expired.status_code == 410
    stats = client.get(f"/api/v1/surveys/stats?serial={serial}", headers=manager.headers).json()
    assert stats["distribution"]["6"] == 1 and stats["share_at_least_8"] == 0.0
    per_customer = client.get("/api/v1/surveys/stats/customers", headers=manager.headers).json()
    assert per_customer["C01"]["answered"] == 1
