"""Imports every domain's tables so that ``Base.metadata`` and the audit registry are complete.

Migrations, the server and the tests import this module once; domain code never needs to.
"""

from fleetup.accounts import models as accounts_models
from fleetup.campaigns import models as campaigns_models
from fleetup.core import audit, idempotency, simulated_clock
from fleetup.core.db import Base
from fleetup.customers import models as customers_models
from fleetup.devices import models as devices_models
from fleetup.fleet import models as fleet_models
from fleetup.notify import inbox as notify_inbox
from fleetup.notify import models as notify_models
from fleetup.operations import models as operations_models
from fleetup.releases import models as releases_models
from fleetup.upgrades import models as upgrades_models

metadata = Base.metadata

__all__ = [
    "accounts_models",
    "audit",
    "campaigns_models",
    "customers_models",
    "devices_models",
    "fleet_models",
    "idempotency",
    "metadata",
    "notify_inbox",
    "notify_models",
    "operations_models",
    "releases_models",
    "simulated_clock",
    "upgrades_models",
]
