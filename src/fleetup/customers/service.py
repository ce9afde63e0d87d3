"""What other domains call on the customer's side: plan a visit's notices, open a survey."""

from __future__ import annotations

from fleetup.customers.notices import schedule_notice
from fleetup.customers.surveys import open_survey

__all__ = ["open_survey", "schedule_notice"]
