"""Turning one cell of an inventory file into a value, or into a problem the user can act on.

Lengths, code patterns and e-mail rules are taken from the API schemas in ``fleet.schemas``,
so a file is held to exactly the rules of the API; only the wording of the messages is ours,
because pydantic's messages are English only. Maintenance windows are written the way the SOP
writes them, ``mon-fri 18:00-22:00; sat 08:00-12:00``, and also ``週一至週五 18:00-22:00``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Annotated, Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, TypeAdapter, ValidationError

from fleetup.fleet.inventory_problems import N_
from fleetup.fleet.schemas import ContactIn, CustomerIn, MachineIn, MaintenanceWindow, SiteIn


class BadCell(Exception):
    """A cell's text is not a valid value; carries the message id and its parameters."""

    def __init__(self, msgid: str, **params: str | int) -> None:
        super().__init__(msgid)
        self.msgid = msgid
        self.params = params


CellValue = str | bool | list[MaintenanceWindow]

_CODE_RULE = N_(
    "Use only letters, digits, '.', '_' and '-', starting with a letter or digit (no spaces)."
)
_PHONE_RULE = N_("Use only digits, spaces and + ( ) # -, like 0912-345-678.")


def _schema_text(model: type[BaseModel], name: str, pattern_rule: str = "") -> Callable[[str], str]:
    """A parser holding a cell to the same constraints as ``model.name`` in the API."""
    info = model.model_fields[name]
    # Annotated[...] built at run time from the field's own constraints (lengths, pattern).
    annotation: Any = (
        cast(Any, Annotated)[(info.annotation, *info.metadata)]
        if info.metadata
        else info.annotation
    )
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)

    def parse(text: str) -> str:
        try:
            value = adapter.validate_python(text)
        except ValidationError as error:
            first = error.errors()[0]
            kind, context = first["type"], first.get("ctx") or {}
            if kind == "string_too_long":
                raise BadCell(
                    N_("Too long: at most {limit} characters."), limit=int(context["max_length"])
                ) from error
            if kind == "string_pattern_mismatch" and pattern_rule:
                raise BadCell(pattern_rule) from error
            if name == "email":
                raise BadCell(N_("Not a valid e-mail address.")) from error
            raise BadCell(N_("Not valid: {reason}"), reason=first["msg"]) from error
        return str(value)

    return parse


_YES = {"yes", "y", "true", "1", "是", "有", "v"}
_NO = {"no", "n", "false", "0", "否", "無", "无"}


def parse_yes_no(text: str) -> bool:
    """``yes/no``, ``true/false``, ``1/0`` and ``是/否``, in any case or width.

    Raises:
        BadCell: anything else.
    """
    folded = unicodedata.normalize("NFKC", text).strip().lower()
    if folded in _YES:
        return True
    if folded in _NO:
        return False
    raise BadCell(N_("Write yes or no (是 or 否), not {value!r}."), value=text)


def parse_timezone(text: str) -> str:
    """An IANA time zone name such as ``Asia/Taipei``.

    Raises:
        BadCell: the name is not in the time zone database.
    """
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:
        raise BadCell(
            N_("Unknown time zone {value!r}; use a name such as Asia/Taipei."), value=text
        ) from error
    return text


_DAYS: dict[str, int] = {}
for _index, _names in enumerate(
    (
        ("mon", "monday", "一"),
        ("tue", "tues", "tuesday", "二"),
        ("wed", "wednesday", "三"),
        ("thu", "thur", "thurs", "thursday", "四"),
        ("fri", "friday", "五"),
        ("sat", "saturday", "六"),
        ("sun", "sunday", "日", "天"),
    )
):
    for _name in _names:
        _DAYS[_name] = _index
_GROUPS: dict[str, list[int]] = {
    "daily": list(range(7)),
    "everyday": list(range(7)),
    "每天": list(range(7)),
    "每日": list(range(7)),
    "weekdays": list(range(5)),
    "weekday": list(range(5)),
    "平日": list(range(5)),
    "工作日": list(range(5)),
    "weekends": [5, 6],
    "weekend": [5, 6],
    "週末": [5, 6],
    "周末": [5, 6],
    "假日": [5, 6],
}
_CLEAR = {"none", "-", "無", "无"}
_WINDOW = re.compile(
    r"(?P<days>.*?)\s*(?P<start>\d{1,2}:\d{2})\s*(?:-|~|至|到)\s*(?P<end>\d{1,2}:\d{2})"
)
_RANGE = re.compile(r"\s*(?:-|~|至|到)\s*")
_DAY_PREFIX = re.compile(r"^(?:星期|禮拜|礼拜|週|周)")


def _day(token: str) -> int:
    day = _DAYS.get(_DAY_PREFIX.sub("", token))
    if day is None:
        raise BadCell(
            N_("Unknown day {day!r} in the maintenance window; use mon … sun or 週一 … 週日."),
            day=token,
        )
    return day


def _days(text: str) -> list[int]:
    if not text:
        return list(range(7))  # "18:00-22:00" alone means every day
    text = _RANGE.sub("-", text.replace("every day", "everyday"))
    days: list[int] = []
    for token in re.split(r"[,、/\s]+", text):
        if not token:
            continue
        if token in _GROUPS:
            days.extend(_GROUPS[token])
        elif "-" in token:
            first, _, last = token.partition("-")
            start, end = _day(first), _day(last)
            # fri-mon wraps past Sunday, as people mean it.
            days.extend((start + step) % 7 for step in range((end - start) % 7 + 1))
        else:
            days.append(_day(token))
    return days


def _clock(text: str) -> str:
    hours, _, minutes = text.partition(":")
    return f"{int(hours):02d}:{minutes}"


def parse_windows(text: str) -> list[MaintenanceWindow]:
    """Weekly maintenance windows: ``mon-fri 18:00-22:00; sat 08:00-12:00``.

    Windows are separated by ``;``; days by ``,`` or given as ranges (``mon-fri``, ``週一至週五``)
    or groups (``daily``, ``weekdays``, ``weekends``, ``每天``, ``平日``, ``週末``). A window
    whose end is before its start runs past midnight. ``none`` (or ``無``) means no windows.

    Raises:
        BadCell: a part cannot be read, names an unknown day, or has an impossible time.
    """
    folded = unicodedata.normalize("NFKC", text).strip().lower()
    if folded in _CLEAR:
        return []
    windows: list[MaintenanceWindow] = []
    for part in (piece.strip() for piece in folded.split(";")):
        if not part:
            continue
        match = _WINDOW.fullmatch(part)
        if match is None:
            raise BadCell(
                N_(
                    "Cannot read the maintenance window {part!r}; "
                    "write it like mon-fri 18:00-22:00; sat 08:00-12:00."
                ),
                part=part,
            )
        start, end = _clock(match["start"]), _clock(match["end"])
        if start == end:
            raise BadCell(
                N_("The maintenance window {part!r} starts and ends at the same time."), part=part
            )
        try:
            windows.append(MaintenanceWindow(days=_days(match["days"]), start=start, end=end))
        except ValidationError as error:
            raise BadCell(
                N_("The times in {part!r} must be 24-hour HH:MM, from 00:00 to 24:00."),
                part=part,
            ) from error
    return windows


PARSERS: dict[str, Callable[[str], CellValue]] = {
    "customer_code": _schema_text(CustomerIn, "code", _CODE_RULE),
    "customer_name": _schema_text(CustomerIn, "name"),
    "customer_existing": parse_yes_no,
    "contact_name": _schema_text(ContactIn, "name"),
    "contact_phone": _schema_text(ContactIn, "phone", _PHONE_RULE),
    "contact_email": _schema_text(ContactIn, "email"),
    "contact_line_id": _schema_text(ContactIn, "line_id"),
    "site_code": _schema_text(SiteIn, "code", _CODE_RULE),
    "site_name": _schema_text(SiteIn, "name"),
    "site_address": _schema_text(SiteIn, "address"),
    "site_timezone": parse_timezone,
    "maintenance_window": parse_windows,
    "serial": _schema_text(MachineIn, "serial", _CODE_RULE),
    "model": _schema_text(MachineIn, "model"),
    "ipc_os": _schema_text(MachineIn, "ipc_os"),
    "old_system_id": _schema_text(MachineIn, "old_system_id"),
    "program_version": _schema_text(MachineIn, "program_version"),
}


def parse_cell(column: str, text: str) -> CellValue:
    """The value of a non-blank cell of ``column``.

    Args:
        column: a canonical column name (see ``inventory_read.COLUMNS``).
        text: the cell, already stripped; must not be blank.

    Returns:
        Text, a bool (``customer_existing``) or windows (``maintenance_window``).

    Raises:
        BadCell: the text breaks the column's rules, or holds control characters.
    """
    if any(unicodedata.category(char) in {"Cc", "Cs"} for char in text):
        raise BadCell(N_("The cell holds invisible control characters; retype it."))
    return PARSERS[column](text)
