"""Names the device tests share."""

from __future__ import annotations

from dataclasses import dataclass

SERIAL = "YJ-TC1-CNC001"
OTHER = "YJ-TC1-CNC002"


@dataclass
class Ipc:
    serial: str
    device_id: str
    credential: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}
