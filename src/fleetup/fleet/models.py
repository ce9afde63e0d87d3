"""Customers, contacts, sites and machines."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fleetup.core.audit import audited
from fleetup.core.db import Base


class MachineState(enum.StrEnum):
    on_old_system = "on_old_system"
    migrating = "migrating"
    on_new_platform = "on_new_platform"
    retired = "retired"


@audited
class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Chart 2's B: an existing customer has a record to check; a new one needs one made (D).
    is_existing: Mapped[bool] = mapped_column(Boolean, default=True)

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="Contact.id"
    )
    sites: Mapped[list[Site]] = relationship(back_populates="customer", order_by="Site.id")


@audited
class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    line_id: Mapped[str] = mapped_column(String(64), default="")

    customer: Mapped[Customer] = relationship(back_populates="contacts")


@audited
class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("customer_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Taipei")
    # A list of {"days": [0..6 Monday first], "start": "HH:MM", "end": "HH:MM"}.
    maintenance_windows: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    customer: Mapped[Customer] = relationship(back_populates="sites")
    machines: Mapped[list[Machine]] = relationship(back_populates="site", order_by="Machine.id")


@audited
class Machine(Base):
    __tablename__ = "machines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    ipc_os: Mapped[str] = mapped_column(String(64))
    old_system_id: Mapped[str] = mapped_column(String(64), default="")
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    program_version: Mapped[str] = mapped_column(String(32), default="")
    state: Mapped[MachineState] = mapped_column(
        Enum(MachineState, native_enum=False, length=20),
        default=MachineState.on_old_system,
        index=True,
    )

    site: Mapped[Site] = relationship(back_populates="machines")
