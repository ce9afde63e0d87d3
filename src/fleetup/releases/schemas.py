"""What the API and the CLI show of releases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class ReleaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    version: str
    target: str
    sha256: str
    length: int
    manifest: dict[str, Any]
    created_at: datetime
