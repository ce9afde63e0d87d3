"""Which SOP definitions the server runs, and the exact versions running instances started with."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from threading import Lock

from sqlalchemy.orm import Session

from fleetup.core.context import Ctx
from fleetup.core.db import looked_up, remember
from fleetup.core.errors import NotFound
from fleetup.sop.loader import effective_definitions
from fleetup.sop.model import Definition
from fleetup.upgrades.models import SopDefinitionRecord

UPGRADE_CHART = "chart2"


class SopLibrary:
    """The definitions new instances start from, plus every version ever started, by hash.

    Built once per server from the configuration (``sop_definitions`` may replace shipped
    charts); a bad replacement file stops the server at start with the loader's message.
    """

    def __init__(self, overrides: Mapping[str, str | Path] | None = None) -> None:
        self._current = effective_definitions(overrides)
        self._by_hash = {d.effective_hash: d for d in self._current.values()}
        self._lock = Lock()

    def current(self, chart_id: str) -> Definition:
        try:
            return self._current[chart_id]
        except KeyError as error:
            raise NotFound(f"no SOP chart {chart_id!r}; known: {', '.join(self.charts)}") from error

    @property
    def charts(self) -> list[str]:
        return sorted(self._current)

    def pin(self, ctx: Ctx, definition: Definition) -> None:
        """Keep ``definition`` in the database so its instances can always find it again."""
        stored = looked_up(ctx.session, "sop_definition", definition.effective_hash)
        if stored is None:
            stored = ctx.session.get(SopDefinitionRecord, definition.effective_hash)
        if stored is not None:
            remember(ctx.session, "sop_definition", definition.effective_hash, stored)
            return
        record = SopDefinitionRecord(
            hash=definition.effective_hash,
            chart_id=definition.id,
            version=definition.version,
            body=definition.model_dump(mode="json", by_alias=True),
            first_used_at=ctx.now(),
        )
        ctx.session.add(record)
        ctx.audit("create", record, None)
        remember(ctx.session, "sop_definition", definition.effective_hash, record)

    def by_hash(self, session: Session, definition_hash: str) -> Definition:
        """The definition an instance started with, from memory or from the database."""
        found = self._by_hash.get(definition_hash)
        if found is not None:
            return found
        record = session.get(SopDefinitionRecord, definition_hash)
        if record is None:
            raise NotFound(f"no stored SOP definition with hash {definition_hash}")
        definition = Definition.model_validate(record.body)
        with self._lock:
            self._by_hash[definition_hash] = definition
        return definition
