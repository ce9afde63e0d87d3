"""A simulated customer: the satisfaction survey of chart 5 once a site's machines are done.

The customer tests and confirms the functions, answers the survey with the score its luck
gives; below 8 the technician looks into it, improves and retests, and the customer answers
again (the retest score is always 8 or more), after which the manager closes the loop.
"""

from __future__ import annotations

import random
from collections.abc import Generator

from fleetup.sim.loop import EventLoop, Wait
from fleetup.sim.result import Api, SimResult
from fleetup.sim.walk import start, walk

SURVEY_MINUTES = {"B": 20.0, "C": 15.0, "D": 5.0, "G": 30.0, "H": 60.0, "I": 30.0}


def survey(
    api: Api,
    loop: EventLoop,
    token: str,
    result: SimResult,
    *,
    customer_code: str,
    score: int,
    retest_score: int,
    rng: random.Random,
) -> Generator[Wait, None, None]:
    opened = start(api, token, "chart5", "customer", customer_code)
    if opened is None:
        return
    scores = iter([score, retest_score, retest_score, retest_score])

    def choose(node: str, outcomes: list[str]) -> str:
        if node != "E":
            return outcomes[0]
        given = next(scores)
        result.scores.append(given)
        result.surveys["answered"] += 1
        if given < 8:
            result.surveys["below_8"] += 1
            return "below_8"
        return "at_least_8"

    final = yield from walk(
        api,
        loop,
        token,
        opened,
        choose=choose,
        minutes=lambda node: round(SURVEY_MINUTES.get(node, 5.0) * rng.uniform(0.7, 1.3), 1),
    )
    result.surveys["completed" if final["status"] == "completed" else final["status"]] += 1
