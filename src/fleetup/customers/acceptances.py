"""The customer's acceptance signature (chart 2 step T) and what it records.

The customer signs on the technician's phone or through a signed link. The acceptance keeps
the signer's name, the time, what was accepted (machine, model, program version, function
test result) and the signature image, a PNG checked chunk by chunk before it is stored; its
SHA-256 goes into the audit trail with the row. Signing finishes step T of the machine's
upgrade, so an acceptance can only be signed while the upgrade stands at T.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import struct
import zlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from fleetup.core.security import Signer
from fleetup.customers.links import LinkRefused, Links, default_links, link_path, read_token
from fleetup.customers.models import Acceptance
from fleetup.customers.notices import deliver, recipients
from fleetup.fleet import service as fleet
from fleetup.fleet.models import Machine
from fleetup.upgrades import service as upgrades
from fleetup.upgrades.library import SopLibrary
from fleetup.upgrades.models import SopInstance

ACCEPTANCE_NODE = "T"
MAX_SIGNATURE_BYTES = 512 * 1024
MAX_SIGNATURE_SIDE = 4000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_png(data: bytes) -> tuple[int, int]:
    """Width and height of ``data`` if it is a whole, well-formed PNG within the caps.

    Raises:
        InvalidInput: not a PNG, damaged (a chunk's CRC is wrong, IEND missing), too big.
    """

    def bad(message: str) -> InvalidInput:
        return InvalidInput(message, [FieldProblem("signature", message)])

    if len(data) > MAX_SIGNATURE_BYTES:
        raise bad(f"the signature image is larger than {MAX_SIGNATURE_BYTES // 1024} KiB")
    if not data.startswith(PNG_MAGIC):
        raise bad("the signature is not a PNG image")
    position = len(PNG_MAGIC)
    chunks: list[bytes] = []
    size: tuple[int, int] | None = None
    while position + 12 <= len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if len(body) != length or position + 12 + length > len(data):
            raise bad("the signature image is cut short")
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise bad("the signature image is damaged")
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        chunks.append(kind)
        position += 12 + length
        if kind == b"IEND":
            break
    if not chunks or chunks[0] != b"IHDR" or chunks[-1] != b"IEND" or size is None:
        raise bad("the signature image is incomplete")
    if b"IDAT" not in chunks:
        raise bad("the signature image holds no picture")
    width, height = size
    if not (0 < width <= MAX_SIGNATURE_SIDE and 0 < height <= MAX_SIGNATURE_SIDE):
        raise bad("the signature image has an impossible size")
    return width, height


def decode_data_url(value: str) -> bytes:
    """The bytes of a ``data:image/png;base64,...`` URL (what signature_pad gives).

    Raises:
        InvalidInput: not a PNG data URL, or not base64.
    """
    prefix = "data:image/png;base64,"
    if not value.startswith(prefix):
        message = "sign in the box first"
        raise InvalidInput(message, [FieldProblem("signature", message)])
    try:
        return base64.b64decode(value[len(prefix) :], validate=True)
    except ValueError as error:
        message = "the signature is not valid base64"
        raise InvalidInput(message, [FieldProblem("signature", message)]) from error


def _tests_of(instance: SopInstance) -> dict[str, Any]:
    """The function test (O, check F1) and its verdict (P), as the upgrade recorded them."""
    state = upgrades.state_of(instance)
    result: dict[str, Any] = {"function_test": None, "passed": None}
    for run in state.runs:
        if run.node == "O" and run.attempts:
            evidence = run.attempts[-1].evidence
            result["function_test"] = evidence.text or run.attempts[-1].result
        if run.node == "P" and run.outcome is not None:
            result["passed"] = run.outcome == "yes"
    return result


def at_acceptance(session: Session, *, machine: Machine) -> SopInstance:
    """The machine's upgrade, standing at T.

    Raises:
        Conflict: no running upgrade, or it is not at the acceptance step.
    """
    instance = upgrades.active_upgrade(session, machine_id=machine.id)
    if instance is None or instance.current_node != ACCEPTANCE_NODE:
        where = instance.current_node if instance else "no running upgrade"
        raise Conflict(f"machine {machine.serial} is not waiting for acceptance ({where})")
    return instance


def sign(
    ctx: Ctx,
    library: SopLibrary,
    *,
    serial: str,
    signer_name: str,
    png: bytes,
    via: str,
    links: Links | None = None,
) -> Acceptance:
    """Record the customer's acceptance of a machine's upgrade and finish step T.

    Raises:
        NotFound: no machine with that serial.
        InvalidInput: no name, or the image is not an acceptable PNG.
        Conflict: the upgrade is not at T.
    """
    machine = fleet.get_machine(ctx.session, serial=serial)
    name = signer_name.strip()
    if not name:
        message = "write the name of the person signing"
        raise InvalidInput(message, [FieldProblem("signer_name", message)])
    if len(name) > 100:
        message = "the name is longer than 100 characters"
        raise InvalidInput(message, [FieldProblem("signer_name", message)])
    check_png(png)
    instance = at_acceptance(ctx.session, machine=machine)
    digest = hashlib.sha256(png).hexdigest()
    now = ctx.now()
    acceptance = Acceptance(
        machine_id=machine.id,
        instance_id=instance.id,
        number=f"ACC-new-{secrets.token_hex(8)}",  # until the row has its id
        signer_name=name,
        signed_at=now,
        signed_via=via,
        machines=[
            {
                "serial": machine.serial,
                "model": machine.model,
                "program_version": machine.program_version,
                "tests": _tests_of(instance),
            }
        ],
        signature_b64=base64.b64encode(png).decode(),
        signature_sha256=digest,
        signature_bytes=len(png),
    )
    ctx.session.add(acceptance)
    ctx.session.flush()
    # Numbered by the row's own id: two signatures at the same moment never share a number,
    # and numbering costs no count of every acceptance so far.
    acceptance.number = f"ACC-{now:%Y%m%d}-{acceptance.id:05d}"
    ctx.audit("create", acceptance, None, note=f"signature sha256 {digest}")
    links = links or default_links()
    deliver(
        ctx,
        template="acceptance_signed",
        key=f"acceptance:{acceptance.id}",
        to=recipients(machine),
        params={
            "customer": machine.site.customer.name,
            "serial": machine.serial,
            "number": acceptance.number,
            "signer": name,
            "signed_at": now.strftime("%Y-%m-%d %H:%M"),
            "link": links.base_url + certificate_link(links.signer, acceptance),
        },
    )
    steps = upgrades.Steps(ctx, library, instance_id=instance.id)
    if not any(r.node == ACCEPTANCE_NODE and r.status == "in_progress" for r in steps.state.runs):
        steps.post({"type": "step_started", "node": ACCEPTANCE_NODE})
    evidence = {
        "text": f"accepted by {name} ({acceptance.number})",
        "files": [
            {
                "name": "signature.png",
                "uri": f"acceptance:{acceptance.id}",
                "sha256": digest,
                "size_bytes": len(png),
            }
        ],
    }
    steps.post({"type": "step_finished", "node": ACCEPTANCE_NODE, "evidence": evidence})
    steps.store()
    return acceptance


def signature_png(acceptance: Acceptance) -> bytes:
    return base64.b64decode(acceptance.signature_b64)


def get(session: Session, *, acceptance_id: int) -> Acceptance:
    found = session.get(Acceptance, acceptance_id)
    if found is None:
        raise NotFound(f"no acceptance {acceptance_id}")
    return found


def get_all(session: Session, *, serial: str | None = None) -> Sequence[Acceptance]:
    query = select(Acceptance).order_by(Acceptance.id)
    if serial:
        query = query.where(Acceptance.machine_id == fleet.get_machine(session, serial=serial).id)
    return session.scalars(query).all()


def machine_of(session: Session, acceptance: Acceptance) -> Machine:
    return session.get_one(Machine, acceptance.machine_id)


def link_for(session: Session, *, signer: Signer, serial: str) -> str:
    """The signed link on which the customer signs a machine's acceptance remotely.

    Raises:
        Conflict: the upgrade is not at T.
    """
    machine = fleet.get_machine(session, serial=serial)
    instance = at_acceptance(session, machine=machine)
    return link_path(signer, "acceptance", {"m": machine.serial, "i": instance.id})


def open_link(session: Session, *, signer: Signer, token: str) -> Machine:
    """The machine an acceptance link is about, while it can still be signed.

    Raises:
        LinkRefused: forged (invalid), already signed (used), the upgrade moved on (expired).
    """
    value = read_token(signer, "acceptance", token)
    if not isinstance(value, dict):
        raise LinkRefused("invalid")
    try:
        machine = fleet.get_machine(session, serial=str(value.get("m")))
    except NotFound as error:
        raise LinkRefused("invalid") from error
    instance_id = value.get("i")
    signed = session.scalar(select(Acceptance.id).where(Acceptance.instance_id == instance_id))
    if signed is not None:
        raise LinkRefused("used")
    instance = upgrades.active_upgrade(session, machine_id=machine.id)
    if instance is None or instance.id != instance_id or instance.current_node != "T":
        raise LinkRefused("expired")
    return machine


def certificate_link(signer: Signer, acceptance: Acceptance) -> str:
    """The customer's lasting link to their certificate."""
    return link_path(signer, "certificate", acceptance.id)


def open_certificate(session: Session, *, signer: Signer, token: str) -> Acceptance:
    """The acceptance a certificate link names.

    Raises:
        LinkRefused: forged or altered.
    """
    value = read_token(signer, "certificate", token)
    found = session.get(Acceptance, value) if isinstance(value, int) else None
    if found is None:
        raise LinkRefused("invalid")
    return found
