"""Every periodic job of the product, in the order a worker runs them when several are due."""

from __future__ import annotations

from datetime import timedelta

from fleetup.campaigns import scheduled as campaigns
from fleetup.customers import scheduled as customers
from fleetup.notify import delivery
from fleetup.operations import scheduled as operations
from fleetup.worker import Job

JOBS: list[Job] = [
    Job(
        "campaigns.check_gates",
        campaigns.EVERY,
        campaigns.check_gates,
        pending=campaigns.PENDING,
        changes=campaigns.CHANGES,
        changed=campaigns.CHANGED,
    ),
    Job(
        "notify.publish_wakeups",
        timedelta(seconds=1),
        delivery.publish_wakeups,
        pending=delivery.wakeups_pending,
    ),
    Job(
        "notify.deliver_due",
        timedelta(seconds=2),
        delivery.deliver_due,
        pending=delivery.deliveries_pending,
    ),
    *operations.JOBS,
    *customers.JOBS,
]
