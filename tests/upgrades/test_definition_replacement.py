"""A definition file named in the configuration replaces the shipped chart for new instances;
running instances keep the version they started with."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from fleetup.core.context import Ctx
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import CustomerIn, MachineIn, SiteIn
from fleetup.sop.errors import DefinitionError
from fleetup.upgrades import presenting, service
from fleetup.upgrades.library import SopLibrary

SHIPPED_CHART2 = resources.files("fleetup.sop") / "definitions" / "chart2.yaml"


def _machines(ctx: Ctx, *serials: str) -> None:
    fleet.create_customer(ctx, CustomerIn(code="HX", name="宏興"))
    fleet.create_site(ctx, SiteIn(customer_code="HX", code="TN", name="台南廠"))
    for serial in serials:
        fleet.create_machine(
            ctx,
            MachineIn(serial=serial, model="M", ipc_os="Win", customer_code="HX", site_code="TN"),
        )
    ctx.session.commit()


def _edited_chart2(tmp_path: Path) -> Path:
    original = SHIPPED_CHART2.read_text(encoding="utf-8")
    edited = original.replace('version: "1.0"', 'version: "1.1"').replace(
        "en: Check the machine state", "en: Inspect the machine on site"
    )
    assert edited != original
    path = tmp_path / "chart2-site.yaml"
    path.write_text(edited, encoding="utf-8")
    return path


def test_new_instances_use_the_replacement_and_running_ones_keep_theirs(
    ctx: Ctx, tmp_path: Path
) -> None:
    _machines(ctx, "OLD-1", "NEW-1")
    shipped = SopLibrary()
    old = service.start_upgrade(ctx, shipped, serial="OLD-1")
    ctx.session.commit()

    replaced = SopLibrary({"chart2": _edited_chart2(tmp_path)})
    new = service.start_upgrade(ctx, replaced, serial="NEW-1")
    ctx.session.commit()
    assert presenting.describe(ctx.session, replaced, new).definition_version == "1.1"

    for instance in (old, new):
        service.post_event(
            ctx,
            replaced,
            instance_id=instance.id,
            event={"type": "decision_taken", "node": "B", "outcome": "yes"},
        )
    ctx.session.commit()
    old_view = presenting.describe(ctx.session, replaced, old)
    new_view = presenting.describe(ctx.session, replaced, new)
    assert old_view.definition_version == "1.0"
    assert old_view.current_label == "Check the machine state"
    assert new_view.current_label == "Inspect the machine on site"


def test_a_bad_replacement_is_refused_naming_the_file_and_node(tmp_path: Path) -> None:
    original = SHIPPED_CHART2.read_text(encoding="utf-8")
    broken = tmp_path / "chart2-broken.yaml"
    broken.write_text(original.replace("  - {from: U, to: V}\n", ""), encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        SopLibrary({"chart2": broken})
    text = str(caught.value)
    assert "chart2-broken.yaml" in text
    assert "U" in text
