"""Turning the agent's step reports into chart 2 events on the machine's upgrade instance.

The agent reports chart 3's automated steps; chart 2 names the same work with its own nodes:

| agent step    | chart 2 node | ✅ check | decision after success |
|---------------|--------------|----------|------------------------|
| backup        | F            | B1       |                        |
| download      | I            |          |                        |
| install       | J            | C1       | K "yes"                |
| network       | L            | D1       |                        |
| register      | N            | E1       |                        |
| function_test | O            | F1       | P "yes"                |

A failure the agent will retry closes the attempt (``step_finished failed``): the step stays
due and the next ``started`` opens attempt 2. A final install failure is decided at K "no"
(and a final function test failure at P "no"), which is how the engine reaches M reinstall
(capped at 3) and R troubleshoot: the engine leaves a step only after its checks, so the
check records that the attempt was performed and carries the failure as its evidence, and
the decision carries the verdict. Rollbacks have no node; they stay as device evidence.

The nodes before F (B existing customer?, C check the machine, E network OK?) are settled on
the first report when they are still open: B from the registry, C and E by the device itself,
which has just reached the server. A machine that needs a manager (D) or a technician (G, H)
first is not moved; the report is kept and its ``sop_note`` says why.

Every posted event carries the agent's own ``at``. A report the instance cannot take (it
waits on a loop cap, or is elsewhere) is still accepted from the device: the device did the
work, and the note tells the operator what the SOP made of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict, InvalidInput
from fleetup.fleet import service as fleet
from fleetup.upgrades import service as upgrades
from fleetup.upgrades.library import SopLibrary

NODE_OF = {
    "backup": "F",
    "download": "I",
    "install": "J",
    "network": "L",
    "register": "N",
    "function_test": "O",
}
CHECK_OF = {"F": "B1", "J": "C1", "L": "D1", "N": "E1", "O": "F1"}
DECISION_AFTER = {"J": "K", "O": "P"}
_BEFORE_F = ("B", "C", "E")


class _Stop(Exception):
    """The report cannot move the instance; the message goes into the note."""


def evidence_of(step: str, evidence: dict[str, Any]) -> dict[str, Any]:
    """The agent's evidence in the engine's shape: numbers, a short text, the backup file."""
    numbers = {
        key: float(value)
        for key, value in evidence.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    rest = {k: v for k, v in evidence.items() if k not in numbers}
    result: dict[str, Any] = {
        "text": json.dumps(rest, sort_keys=True, ensure_ascii=False, default=str)[:2000],
        "numbers": numbers,
    }
    sha256 = evidence.get("sha256")
    if step == "backup" and isinstance(sha256, str) and len(sha256) == 64:
        result["files"] = [
            {
                "name": str(evidence.get("archive") or "backup.tar.zst"),
                "uri": f"blob:{sha256}",
                "sha256": sha256,
                "size_bytes": int(evidence.get("size") or 0),
            }
        ]
    return result


class StepMapper:
    """Posts the chart 2 events for one step report.

    Args:
        ctx: the write context (its actor is ``device:SERIAL``).
        library: the SOP definitions.
        instance_id: the machine's chart 2 instance.
        customer_existing: asks the registry B "existing customer?" (only when the upgrade
            still stands at B).
    """

    def __init__(
        self,
        ctx: Ctx,
        library: SopLibrary,
        *,
        instance_id: int,
        customer_existing: Callable[[], bool],
    ) -> None:
        self.ctx = ctx
        self.library = library
        self.instance_id = instance_id
        self.customer_existing = customer_existing
        self.posted: list[str] = []
        self._steps: upgrades.Steps | None = None

    @property
    def steps(self) -> upgrades.Steps:
        if self._steps is None:
            self._steps = upgrades.Steps(self.ctx, self.library, instance_id=self.instance_id)
        return self._steps

    def apply(self, *, step: str, status: str, at: datetime, evidence: dict[str, Any]) -> str:
        """Post what the report means; returns the note kept with the report.

        The events are applied in memory and stored together at the end, those taken before
        one the instance refused included.
        """
        node = NODE_OF.get(step)
        if node is None:
            return f"{step} has no chart 2 node; kept as device evidence"
        try:
            if status == "started":
                self._started(node, at)
            elif status == "succeeded":
                self._succeeded(step, node, at, evidence)
            else:
                self._failed(step, node, at, evidence)
        except (_Stop, Conflict, InvalidInput) as error:
            posted = f"posted {', '.join(self.posted)}; " if self.posted else ""
            message = error.message if isinstance(error, Conflict | InvalidInput) else str(error)
            return f"{posted}not applied: {message}"
        finally:
            if self._steps is not None:
                self._steps.store()
        return "posted " + ", ".join(self.posted) if self.posted else "nothing to post"

    def _post(self, event: dict[str, Any]) -> None:
        self.steps.post(event)
        self.posted.append(f"{event['type']} {event['node']}")

    def _state(self) -> tuple[str, str, str]:
        state = self.steps.state
        return state.status, state.current, state.current_run.status

    def _started(self, node: str, at: datetime) -> None:
        self._bring_to(node, at)
        _, _, run_status = self._state()
        if run_status == "in_progress":
            # A restart after a crash: the open attempt ended without a report.
            self._post(
                {
                    "type": "step_finished",
                    "node": node,
                    "result": "failed",
                    "at": at.isoformat(),
                    "evidence": {"text": "interrupted; the agent started a new attempt"},
                }
            )
        self._post({"type": "step_started", "node": node, "at": at.isoformat()})

    def _succeeded(self, step: str, node: str, at: datetime, evidence: dict[str, Any]) -> None:
        self._expect(node)
        proof = evidence_of(step, evidence)
        self._post(
            {
                "type": "step_finished",
                "node": node,
                "result": "ok",
                "at": at.isoformat(),
                "evidence": proof,
            }
        )
        if node in CHECK_OF:
            self._post(
                {
                    "type": "check_passed",
                    "node": CHECK_OF[node],
                    "at": at.isoformat(),
                    "evidence": proof,
                }
            )
        if node in DECISION_AFTER:
            self._decide(DECISION_AFTER[node], "yes", at, proof)

    def _failed(self, step: str, node: str, at: datetime, evidence: dict[str, Any]) -> None:
        self._expect(node)
        proof = evidence_of(step, evidence)
        final = not evidence.get("will_retry", False)
        if node not in DECISION_AFTER or not final:
            self._post(
                {
                    "type": "step_finished",
                    "node": node,
                    "result": "failed",
                    "at": at.isoformat(),
                    "evidence": proof,
                }
            )
            return
        error = str(evidence.get("error") or evidence.get("error_kind") or "failed")
        performed = {
            "text": f"attempt performed and failed: {error}"[:2000],
            "numbers": proof["numbers"],
        }
        self._post(
            {
                "type": "step_finished",
                "node": node,
                "result": "ok",
                "at": at.isoformat(),
                "evidence": performed,
            }
        )
        self._post(
            {
                "type": "check_passed",
                "node": CHECK_OF[node],
                "at": at.isoformat(),
                "evidence": performed,
            }
        )
        self._decide(DECISION_AFTER[node], "no", at, proof)

    def _decide(self, node: str, outcome: str, at: datetime, proof: dict[str, Any]) -> None:
        self._post(
            {
                "type": "decision_taken",
                "node": node,
                "outcome": outcome,
                "at": at.isoformat(),
                "evidence": proof,
            }
        )

    def _expect(self, node: str) -> None:
        status, current, run_status = self._state()
        if current != node or run_status != "in_progress":
            raise _Stop(f"the upgrade is at {current} ({status}), not in step {node}")

    def _bring_to(self, node: str, at: datetime) -> None:
        """Settle the open nodes between where the instance stands and ``node``."""
        for _ in range(8):
            status, current, _ = self._state()
            if current == node:
                return
            if status != "running":
                raise _Stop(f"the upgrade is {status} at {current}")
            moment = at.isoformat()
            if current == "B":
                outcome = "yes" if self.customer_existing() else "no"
                self._post(
                    {
                        "type": "decision_taken",
                        "node": "B",
                        "outcome": outcome,
                        "at": moment,
                        "actor": "system",
                        "evidence": {"text": "from the customer registry"},
                    }
                )
            elif (current == "C" and node == "F") or (current == "M" and node == "J"):
                text = "the IPC reached the server and took the upgrade"
                if current == "M":
                    text = "the agent installs again"
                self._post({"type": "step_started", "node": current, "at": moment})
                self._post(
                    {
                        "type": "step_finished",
                        "node": current,
                        "result": "ok",
                        "at": moment,
                        "evidence": {"text": text},
                    }
                )
            elif current == "E" and node == "F":
                self._post(
                    {
                        "type": "decision_taken",
                        "node": "E",
                        "outcome": "yes",
                        "at": moment,
                        "evidence": {"text": "the IPC reached the server over its network"},
                    }
                )
            else:
                raise _Stop(f"the upgrade is at {current}, not at {node}")
        raise _Stop(f"the upgrade did not reach {node}")


def customer_is_existing(ctx: Ctx, *, serial: str) -> bool:
    machine = fleet.get_machine(ctx.session, serial=serial)
    return bool(machine.site.customer.is_existing)
