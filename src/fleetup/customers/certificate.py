"""The acceptance certificate as a PDF, in the reader's language, with the signature.

fpdf2 embeds a subset of Noto Sans CJK (Debian's fonts-noto-cjk) so Chinese text renders in
any reader; where no CJK font is installed ``render_pdf`` raises ``NoCjkFont`` and the page
offers its printable form instead (docs/adr/0003-acceptance-certificate-pdf.md).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

from fleetup.customers.acceptances import signature_png
from fleetup.customers.models import Acceptance

FONT_CANDIDATES = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto-cjk/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"),
)


class NoCjkFont(Exception):
    """No font able to draw Chinese is installed; print the certificate page instead."""


def cjk_font() -> Path | None:
    return next((path for path in FONT_CANDIDATES if path.is_file()), None)


def render_pdf(acceptance: Acceptance, labels: Mapping[str, str], customer: str) -> bytes:
    """The certificate as PDF bytes; ``labels`` are the page's words, already translated.

    Raises:
        NoCjkFont: no CJK font is installed.
    """
    font = cjk_font()
    if font is None:
        raise NoCjkFont(str(FONT_CANDIDATES[0]))
    from fpdf import FPDF  # on first use: it takes a quarter of a second to import

    pdf = FPDF(format="A4")
    pdf.set_title(f"{labels['title']} {acceptance.number}")
    pdf.set_creator("fleetup")
    pdf.add_font("noto", fname=str(font))
    pdf.add_page()
    pdf.set_font("noto", size=20)
    pdf.cell(0, 14, labels["title"], new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.set_font("noto", size=11)
    pdf.cell(0, 8, f"{labels['number']}: {acceptance.number}", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 8, f"{labels['customer']}: {customer}", new_x="LMARGIN", new_y="NEXT")
    signed = acceptance.signed_at.strftime("%Y-%m-%d %H:%M UTC")
    pdf.cell(0, 8, f"{labels['signed_at']}: {signed}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("noto", size=10)
    widths = (40, 35, 35, 70)
    heads = (labels["serial"], labels["model"], labels["version"], labels["tests"])
    for width, head in zip(widths, heads, strict=True):
        pdf.cell(width, 8, head, border=1)
    pdf.ln()
    for machine in acceptance.machines:
        tests = machine.get("tests") or {}
        passed = labels["passed"] if tests.get("passed") else labels["not_recorded"]
        cells = (
            str(machine.get("serial", "")),
            str(machine.get("model", "")),
            str(machine.get("program_version") or "-"),
            passed,
        )
        for width, text in zip(widths, cells, strict=True):
            pdf.cell(width, 8, text, border=1)
        pdf.ln()
    pdf.ln(6)
    pdf.set_font("noto", size=11)
    pdf.multi_cell(0, 7, labels["statement"], new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.cell(0, 8, f"{labels['signer']}: {acceptance.signer_name}", new_x="LMARGIN", new_y="NEXT")
    pdf.image(io.BytesIO(signature_png(acceptance)), w=80)
    pdf.set_font("noto", size=8)
    pdf.cell(0, 6, f"SHA-256 {acceptance.signature_sha256}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
