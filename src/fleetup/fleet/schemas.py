"""What the API and the importer accept and return for customers, sites and machines."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from fleetup.core.clock import valid_timezone
from fleetup.fleet.models import MachineState as MachineState

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
CODE = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ContactIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(default="", max_length=40, pattern=r"^[0-9+()#\- ]*$")
    email: EmailStr | None = None
    line_id: str = Field(default="", max_length=64)


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    phone: str
    email: str
    line_id: str


class CustomerIn(Strict):
    code: str = Field(min_length=1, max_length=32, pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    is_existing: bool = True
    contacts: list[ContactIn] = Field(default_factory=list)


class CustomerUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    is_existing: bool | None = None
    contacts: list[ContactIn] | None = None


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    code: str
    name: str
    is_existing: bool
    contacts: list[ContactOut]


class MaintenanceWindow(Strict):
    """A weekly window in the site's time zone; ``end`` before ``start`` runs past midnight."""

    days: list[int] = Field(min_length=1, description="0 = Monday ... 6 = Sunday")
    start: str
    end: str

    @field_validator("days")
    @classmethod
    def _weekdays(cls, days: list[int]) -> list[int]:
        if any(day < 0 or day > 6 for day in days):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return sorted(set(days))

    @field_validator("start", "end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("write the time as HH:MM, 24-hour")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> MaintenanceWindow:
        if self.start == self.end:
            raise ValueError("start and end are the same time")
        return self


class SiteIn(Strict):
    customer_code: str = Field(min_length=1, max_length=32)
    code: str = Field(min_length=1, max_length=32, pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    address: str = Field(default="", max_length=300)
    timezone: str = "Asia/Taipei"
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list)

    _tz = field_validator("timezone")(valid_timezone)


class SiteUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    address: str | None = Field(default=None, max_length=300)
    timezone: str | None = None
    maintenance_windows: list[MaintenanceWindow] | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else valid_timezone(value)


class SiteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    customer_id: int
    code: str
    name: str
    address: str
    timezone: str
    maintenance_windows: list[MaintenanceWindow]


class MachineIn(Strict):
    serial: str = Field(min_length=1, max_length=64, pattern=CODE)
    model: str = Field(min_length=1, max_length=64)
    ipc_os: str = Field(min_length=1, max_length=64)
    old_system_id: str = Field(default="", max_length=64)
    customer_code: str = Field(min_length=1, max_length=32)
    site_code: str = Field(min_length=1, max_length=32)
    program_version: str = Field(default="", max_length=32)
    state: MachineState = MachineState.on_old_system


class MachineUpdate(Strict):
    model: str | None = Field(default=None, min_length=1, max_length=64)
    ipc_os: str | None = Field(default=None, min_length=1, max_length=64)
    old_system_id: str | None = Field(default=None, max_length=64)
    program_version: str | None = Field(default=None, max_length=32)
    state: MachineState | None = None


class MachineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    serial: str
    model: str
    ipc_os: str
    old_system_id: str
    site_id: int
    site_code: str
    site_name: str
    customer_id: int
    customer_code: str
    customer_name: str
    program_version: str
    state: MachineState


class MachineFilter(Strict):
    customer: str | None = Field(default=None, description="Customer code.")
    site: str | None = Field(default=None, description="Site code.")
    state: MachineState | None = None
    model: str | None = None
    q: str | None = Field(default=None, description="Part of a serial or old-system id.")


class ImportTally(BaseModel):
    """How many rows of one kind an import created, updated or found already as the file says."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0


class ImportReport(BaseModel):
    """What an inventory import did (or, for a dry run, would do)."""

    rows: int = Field(description="Machine rows read from the file.")
    dry_run: bool
    customers: ImportTally
    contacts: ImportTally
    sites: ImportTally
    machines: ImportTally
