"""Simulated customers: they answer what fleetup sends them, through the links in the messages.

A visit notice (chart 2 A) carries a ``/n/`` link: the customer confirms the date. A survey
invitation (chart 5) carries a ``/s/`` link: a day or two later the customer opens it (``GET
/api/v1/public/surveys/<token>`` names the machine and the round) and answers with the score
the machine's luck gives; a retest round gets the retest score. Below 8, chart 5 waits for
staff (G understanding, H improvement, I retest): the project manager does those on their
next round through the campaign (``sim.manager``), which sends a new link.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import timedelta

from fleetup.sim.faults import Luck
from fleetup.sim.loop import EventLoop, Wait
from fleetup.sim.result import Api, SimResult

SURVEY_LINK = re.compile(r"/s/([\w.\-]+)")
NOTICE_LINK = re.compile(r"/n/([\w.\-]+)")


@dataclass
class Customers:
    """Every customer contact of the fleet, as one actor reading the customers' mail."""

    api: Api
    loop: EventLoop
    result: SimResult
    rng: random.Random
    luck_of: Callable[[str], Luck]
    low_scores: list[str] = field(default_factory=list)
    answered_notices: set[str] = field(default_factory=set)

    def receive(self, body: str) -> None:
        """A message reached a customer's mailbox."""
        for token in SURVEY_LINK.findall(body):
            delay = timedelta(hours=self.rng.uniform(4, 40))
            self.loop.spawn(self._survey(token), self.loop.now + delay)
        for token in NOTICE_LINK.findall(body):
            # A reminder's link is signed anew and carries the wall-clock second it was signed
            # in; the customer knows the visit by the signed value, the part before the dot.
            visit = token.split(".", 1)[0]
            if visit not in self.answered_notices:
                self.answered_notices.add(visit)
                delay = timedelta(hours=self.rng.uniform(1, 20))
                self.loop.spawn(self._confirm(token), self.loop.now + delay)

    def _confirm(self, token: str) -> Generator[Wait, None, None]:
        answer = self.api.call(
            "POST",
            f"/api/v1/public/notices/{token}",
            json={"answer": "confirmed", "note": ""},
            expect=(200, 410),
        )
        if answer.status_code == 200:
            self.result.surveys["notices_confirmed"] += 1
        yield timedelta(0)

    def _survey(self, token: str) -> Generator[Wait, None, None]:
        opened = self.api.call("GET", f"/api/v1/public/surveys/{token}", expect=(200, 410))
        if opened.status_code != 200:
            return
        survey = opened.json()
        luck = self.luck_of(survey["serial"])
        score = luck.score if survey["round"] == 1 else luck.retest_score
        yield timedelta(minutes=self.rng.uniform(3, 10))
        answered = self.api.call(
            "POST",
            f"/api/v1/public/surveys/{token}",
            json={"score": score, "comment": "" if score >= 8 else "訓練時間不夠，操作還不熟"},
            expect=(200, 410),
        )
        if answered.status_code != 200:
            return
        self.result.scores.append(score)
        self.result.surveys["answered"] += 1
        if score < 8:
            self.result.surveys["below_8"] += 1
            self.low_scores.append(survey["serial"])
