"""SOP instances, their transitions, and the definitions they were started with."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fleetup.core.audit import audited
from fleetup.core.db import Base, UTCDateTime


@audited
class SopDefinitionRecord(Base):
    """A definition exactly as an instance started with it, kept by its effective hash.

    A replaced definition file changes what new instances run; the running ones keep finding
    their own version here.
    """

    __tablename__ = "sop_definitions"

    hash: Mapped[str] = mapped_column(String(300), primary_key=True)
    chart_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    first_used_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __audit_digest__: ClassVar[frozenset[str]] = frozenset({"body"})


@audited
class SopInstance(Base):
    __tablename__ = "sop_instances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    chart_id: Mapped[str] = mapped_column(String(64), index=True)
    definition_hash: Mapped[str] = mapped_column(ForeignKey("sop_definitions.hash"))
    # What the instance is about: ("machine", serial), ("customer", code), ("problem", id).
    subject_kind: Mapped[str] = mapped_column(String(32))
    subject_ref: Mapped[str] = mapped_column(String(64))
    machine_id: Mapped[int | None] = mapped_column(
        ForeignKey("machines.id"), nullable=True, index=True
    )
    status: Mapped[str] = mapped_column(String(16), index=True)
    current_node: Mapped[str] = mapped_column(String(64))
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    transitions: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __audit_digest__: ClassVar[frozenset[str]] = frozenset({"state"})
    # The worker's questions (an upgrade completed without a survey; a wave member whose
    # upgrade moved) read these indexes alone, however many instances a fleet has run.
    __table_args__ = (
        Index("ix_sop_instances_chart_id_status_machine_id", "chart_id", "status", "machine_id"),
        Index("ix_sop_instances_machine_id_chart_id", "machine_id", "chart_id"),
    )
    # Two events applied at once to the same instance: the second one's UPDATE finds the
    # counter moved and fails, instead of silently overwriting the first one's state.
    __mapper_args__ = {  # noqa: RUF012
        "version_id_col": transitions,
        "version_id_generator": False,
    }


@audited
class SopTransitionRecord(Base):
    """One accepted event: what it was, where the instance moved, what the engine asked for."""

    __tablename__ = "sop_transitions"
    __table_args__ = (UniqueConstraint("instance_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("sop_instances.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    from_node: Mapped[str] = mapped_column(String(64))
    to_node: Mapped[str] = mapped_column(String(64))
    effects: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
