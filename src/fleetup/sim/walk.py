"""Walking an SOP instance through the API the way a person does: what is due, done in turn.

The walker reads the instance's ``due`` list and answers its head: a task is started, takes
its time (the loop moves on meanwhile) and is finished ``ok``; a ✅ check is passed; a
decision is taken with the outcome ``choose`` gives. It stops when the instance completes or
waits, or before a task ``stop_at`` names (work for someone else, such as the IPC). ``on_task``
may do a task's extra work first; when that work finishes the task through its own route (an
acceptance finishes T), it returns the instance as it then stands.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any

from fleetup.sim.loop import EventLoop, Wait
from fleetup.sim.result import Api

Instance = dict[str, Any]
Walk = Generator[Wait, None, Instance]


def _post(api: Api, token: str, instance_id: int, event: dict[str, Any]) -> Instance | None:
    answer = api.call(
        "POST",
        f"/api/v1/sop/instances/{instance_id}/events?history=false",
        token=token,
        json=event,
    )
    if answer.status_code != 200:
        return None
    found: Instance = answer.json()["instance"]
    return found


def read(api: Api, token: str, instance_id: int) -> Instance:
    path = f"/api/v1/sop/instances/{instance_id}?history=false"
    found: Instance = api.call("GET", path, token=token).json()
    return found


def walk(
    api: Api,
    loop: EventLoop,
    token: str,
    instance: Instance,
    *,
    choose: Callable[[str, list[str]], str],
    minutes: Callable[[str], float],
    stop_at: Callable[[str], bool] = lambda node: False,
    on_task: Callable[[str], Generator[Wait, None, Instance | None] | None] | None = None,
    limit: int = 60,
) -> Walk:
    """Do what is due on ``instance`` until it completes, waits or reaches ``stop_at``."""
    state = instance
    for _ in range(limit):
        if state["status"] != "running" or not state["due"]:
            return state
        item = state["due"][0]
        node, kind = item["node"], item["kind"]
        at = loop.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        if kind == "check":
            event: dict[str, Any] = {"type": "check_passed", "node": node, "at": at}
        elif kind == "decision":
            outcome = choose(node, list(item["outcomes"]))
            event = {"type": "decision_taken", "node": node, "outcome": outcome, "at": at}
        elif stop_at(node):
            return state
        elif not _in_progress(state, node):
            event = {"type": "step_started", "node": node, "at": at}
        else:
            if on_task is not None:
                extra = on_task(node)
                if extra is not None:
                    moved = yield from extra
                    if moved is not None:  # the task was done through its own route
                        state = moved
                        continue
            yield timedelta(minutes=minutes(node))
            at = loop.now.strftime("%Y-%m-%dT%H:%M:%SZ")
            event = {"type": "step_finished", "node": node, "result": "ok", "at": at}
        posted = _post(api, token, state["id"], event)
        if posted is None:
            return state
        state = posted
    return state


def _in_progress(state: Instance, node: str) -> bool:
    runs = [step for step in state["steps"] if step["node"] == node]
    return bool(runs) and runs[-1]["status"] == "in_progress"


def start(api: Api, token: str, chart: str, kind: str, ref: str) -> Instance | None:
    answer = api.call(
        "POST",
        "/api/v1/sop/instances",
        token=token,
        json={"chart_id": chart, "subject_kind": kind, "subject_ref": ref},
    )
    if answer.status_code != 201:
        return None
    found: Instance = answer.json()
    return found
