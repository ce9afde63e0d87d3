"""What a write needs besides its arguments: a session, who acts, and the time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fleetup.core import audit
from fleetup.core.audit import Change
from fleetup.core.clock import Clock
from fleetup.core.db import Base


@dataclass(frozen=True)
class Ctx:
    """Handed to every service function that writes; reads take only a session."""

    session: Session
    actor: str
    clock: Clock

    def now(self) -> datetime:
        return self.clock.now()

    def audit(
        self,
        action: str,
        row: Base,
        before: dict[str, Any] | None,
        *,
        deleted: bool = False,
        note: str = "",
    ) -> None:
        audit.record(
            self.session,
            at=self.now(),
            actor=self.actor,
            action=action,
            row=row,
            before=before,
            deleted=deleted,
            note=note,
        )

    def audit_all(self, changes: Sequence[Change]) -> list[dict[str, Any] | None]:
        """Audit several writes together, in order; returns each row's snapshot as audited."""
        return audit.record_all(self.session, at=self.now(), actor=self.actor, changes=changes)
