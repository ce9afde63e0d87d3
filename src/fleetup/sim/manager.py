"""The simulated project manager and on-call engineer: the people who decide and respond.

The manager creates the campaign from the SOP template (``POST /api/v1/campaigns``), sizes
its waves to the fleet when it is not the SOP's 90 machines, starts it, and then looks at it
twice a day until the 16 weeks are over. A gate awaiting approval is approved; a wave paused
by its error threshold has its failed machines retried once, and is then resumed with the
failures accepted; a machine no visit fits (its site's maintenance window is shorter than a
visit) has the window widened, as the planner's note asks, and is retried; a dissatisfied
customer's survey gets chart 5's G, H and I. When every wave is done, the manager asks for the
old system's shutdown (E4), which fleetup refuses while something still blocks it. The
preparation, development and acceptance tasks are ticked off as their weeks end; the last one
completes the campaign.

The on-call engineer is paged by ``incident_opened`` and ``incident_escalated`` messages:
they acknowledge within minutes, work the recovery and close the incident with its review.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from fleetup.sim.customer import Customers
from fleetup.sim.loop import EventLoop, Signal, Until, Wait
from fleetup.sim.result import Api, SimResult, moment

# Chart 1's wave sizes for the SOP's 90 machines, as shares of any other fleet.
SHARES = {"D1": 3 / 90, "D2": 7 / 90, "E1": 20 / 90, "E2": 40 / 90}
ROUNDS = (timedelta(hours=0), timedelta(hours=9))  # 08:00 and 17:00 in Taipei, in UTC
# An activity is ticked off on the last day of its planned weeks.
LAST_DAY = timedelta(days=1)
# How long the manager makes a site's maintenance window that no visit fits.
WIDER_WINDOW = timedelta(hours=2)


def widened(window: dict[str, Any]) -> dict[str, Any]:
    """``window`` (days, start, end as HH:MM) lasting at least ``WIDER_WINDOW``."""
    day = timedelta(days=1)
    start = timedelta(hours=int(window["start"][:2]), minutes=int(window["start"][3:]))
    end = timedelta(hours=int(window["end"][:2]), minutes=int(window["end"][3:]))
    if (end - start) % day >= WIDER_WINDOW:
        return window
    later = (start + WIDER_WINDOW) % day
    return {**window, "end": f"{later // timedelta(hours=1):02d}:{later.seconds // 60 % 60:02d}"}


@dataclass
class Manager:
    api: Api
    loop: EventLoop
    result: SimResult
    token: str
    customers: Customers
    end: datetime
    campaign_id: int = 0
    retried: set[str] = field(default_factory=set)
    # Machines whose site's window was widened already, each once.
    windows_widened: set[str] = field(default_factory=set)
    active: bool = False
    finished: bool = False

    def set_up(self, *, release: str, starts_on: date, machines: int, sample: bool) -> int:
        """Find the draft campaign (or make one from the template), size it, start it."""
        found = self.api.call("GET", "/api/v1/campaigns", token=self.token).json()
        mine = [c for c in found if c["status"] in ("draft", "running")]
        if mine:
            campaign = mine[0]
        else:
            campaign = self.api.call(
                "POST",
                "/api/v1/campaigns",
                token=self.token,
                json={
                    "name": "IPC 2.0 雲端平台升級",
                    "release_version": release,
                    "starts_on": starts_on.isoformat(),
                },
            ).json()
        self.campaign_id = int(campaign["id"])
        if campaign["status"] == "draft":
            if not sample:
                self._size_waves(campaign, machines)
            self.api.call("POST", f"/api/v1/campaigns/{self.campaign_id}/start", token=self.token)
        return self.campaign_id

    def _size_waves(self, campaign: dict[str, Any], machines: int) -> None:
        for wave in campaign["waves"]:
            share = SHARES.get(wave["code"])
            if share is None:
                continue
            count = max(1, round(machines * share))
            self.api.call(
                "PATCH",
                f"/api/v1/campaigns/{self.campaign_id}/waves/{wave['code']}",
                token=self.token,
                json={"selection": {"kind": "count", "count": count}},
            )

    def work(self) -> Generator[Wait, None, None]:
        day = self.loop.now.replace(hour=0, minute=0, second=0, microsecond=0)
        while day < self.end:  # after the shutdown too: acceptance and maintenance remain
            for offset in ROUNDS:
                moment = day + offset
                if moment < self.loop.now or moment >= self.end:
                    continue
                yield moment
                self.look()
            day += timedelta(days=1)

    def look(self) -> None:
        campaign = self.api.call(
            "GET", f"/api/v1/campaigns/{self.campaign_id}", token=self.token
        ).json()
        waves = campaign["waves"]
        self.active = any(w["status"] in ("running", "paused") for w in waves)
        self._tasks(campaign, {w["code"] for w in waves})
        retried = False
        for wave in waves:
            if wave["status"] == "paused":
                self._paused(wave)
            elif wave["gate_state"] == "awaiting_approval":
                self._decide(wave["code"], "approve", "the trials met their gate; go on")
            if wave["status"] != "planned" and wave["counts"]["unplanned"]:
                retried = self._no_visit_fits(wave["code"]) or retried
        self._surveys()
        waves_done = waves and all(w["status"] in ("completed", "aborted") for w in waves)
        if waves_done and not retried and not self.finished:
            self.ask_shutdown()

    def _tasks(self, campaign: dict[str, Any], waves: set[str]) -> None:
        """Tick off the preparation, development and acceptance tasks (B, C, F) as their weeks
        go by, each on the last day of its planned weeks (the last of F closes the campaign);
        the waves and the shutdown move their own activities."""
        for activity in campaign["activities"]:
            code = activity["code"]
            if code in waves or code == "E4":
                continue
            starts, ends = moment(activity["planned_start"]), moment(activity["planned_end"])
            status = activity["status"]
            wanted = (
                "done"
                if self.loop.now >= ends - LAST_DAY
                else "doing"
                if self.loop.now >= starts
                else status
            )
            if wanted != status:
                self.api.call(
                    "PATCH",
                    f"/api/v1/campaigns/{self.campaign_id}/activities/{code}",
                    token=self.token,
                    json={"status": wanted, "owner": "sim-manager"},
                )

    def _decide(self, code: str, decision: str, reason: str) -> None:
        self.result.decisions[decision] += 1
        self.api.call(
            "POST",
            f"/api/v1/campaigns/{self.campaign_id}/waves/{code}/{decision}",
            token=self.token,
            json={"reason": reason},
        )

    def _no_visit_fits(self, code: str) -> bool:
        """Widen the maintenance window of each site whose machine of wave ``code`` no visit
        fits, once per machine, and retry them; whether anything was retried."""
        members = self.api.call(
            "GET", f"/api/v1/campaigns/{self.campaign_id}/waves/{code}/members", token=self.token
        ).json()
        done = self.windows_widened
        stuck = [m for m in members if m["status"] == "unplanned" and m["serial"] not in done]
        for member in stuck:
            self.windows_widened.add(member["serial"])
            machine = self.api.call(
                "GET", f"/api/v1/machines/{member['serial']}", token=self.token
            ).json()
            customer, site_code = machine["customer_code"], machine["site_code"]
            sites = self.api.call("GET", f"/api/v1/sites?customer={customer}", token=self.token)
            site = next(s for s in sites.json() if s["code"] == site_code)
            self.api.call(
                "PATCH",
                f"/api/v1/sites/{customer}/{site_code}",
                token=self.token,
                json={"maintenance_windows": [widened(w) for w in site["maintenance_windows"]]},
            )
        if stuck:
            self._decide(code, "retry", "widened the sites' maintenance windows so a visit fits")
        return bool(stuck)

    def _paused(self, wave: dict[str, Any]) -> None:
        code = wave["code"]
        if code not in self.retried and wave["counts"]["failed"]:
            self.retried.add(code)
            self._decide(code, "retry", "retry the failed machines once with a new visit")
        self._decide(code, "resume", "failures looked at; the rest of the wave goes on")

    def _surveys(self) -> None:
        """Chart 5 G, H, I for every customer who scored below 8 since the last round."""
        serials, self.customers.low_scores = self.customers.low_scores, []
        for serial in serials:
            rounds = self.api.call(
                "GET", f"/api/v1/surveys?serial={serial}", token=self.token
            ).json()
            if not rounds:
                continue
            instance_id = rounds[-1]["instance_id"]
            for kind, note in (
                ("understanding", "called the customer: the operators want more practice"),
                ("improvement", "a second training session on site"),
                ("retest", "the customer tested the machine with the trained operators"),
            ):
                self.api.call(
                    "POST",
                    f"/api/v1/surveys/loops/{instance_id}/follow-ups",
                    token=self.token,
                    json={"kind": kind, "note": note, "owner": "sim-manager"},
                )
            self.result.surveys["loops_worked"] += 1

    def ask_shutdown(self) -> None:
        self.finished = True
        path = f"/api/v1/campaigns/{self.campaign_id}/shutdown"
        blockers = self.api.call("GET", path, token=self.token).json()
        open_items = sum(
            len(blockers[key])
            for key in (
                "not_migrated",
                "open_incidents",
                "unverified_backups",
                "missing_acceptances",
            )
        )
        self.result.shutdown_blockers = open_items
        if open_items == 0 and not blockers["shut_down"]:
            done = self.api.call(
                "POST",
                path,
                token=self.token,
                json={
                    "reason": "every machine is on the new platform and accepted",
                    "archive": "old-system archive, read-only, kept on the file server",
                },
            )
            self.result.shut_down = done.status_code == 200


@dataclass
class OnCall:
    """The on-call engineer, paged by incident messages."""

    api: Api
    loop: EventLoop
    result: SimResult
    token: str
    rng: random.Random
    end: datetime
    paged: Signal = field(default_factory=Signal)

    def work(self) -> Generator[Wait, None, None]:
        while self.loop.now < self.end:
            if not self.paged.fired:
                yield Until(self.paged, self.end)
                if not self.paged.fired:
                    return
            # A page that comes while the engineer works is read when they are done.
            self.paged.reset()
            yield timedelta(minutes=self.rng.uniform(2, 12))
            yield from self._respond()

    def _respond(self) -> Generator[Wait, None, None]:
        """Acknowledge every open incident at once (the response the SOP promises within 15
        minutes), then diagnose, fix, recover, review and close them one by one."""
        found = self.api.call("GET", "/api/v1/incidents?open_only=true", token=self.token)
        if found.status_code != 200:
            return
        incidents = found.json()
        for incident in incidents:
            if incident["acknowledged_at"] is None:
                self.api.call(
                    "POST", f"/api/v1/incidents/{incident['id']}/acknowledge", token=self.token
                )
                self.result.incidents["acknowledged"] += 1
        for incident in incidents:
            path = f"/api/v1/incidents/{incident['id']}"
            for state in ("diagnosing", "fixing", "recovered"):
                yield timedelta(minutes=self.rng.uniform(5, 20))
                self.api.call("POST", f"{path}/state", token=self.token, json={"state": state})
            self.api.call(
                "POST",
                f"{path}/review",
                token=self.token,
                json={"root_cause": "the site's link dropped while its machines were upgraded"},
            )
            self.api.call("POST", f"{path}/state", token=self.token, json={"state": "closed"})
            self.result.incidents["closed"] += 1
