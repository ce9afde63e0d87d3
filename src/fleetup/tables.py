"""Imports every domain's tables so that ``Base.metadata`` and the audit registry are complete.

Migrations, the server and the tests import this module once; domain code never needs to.
"""

from fleetup.accounts import models as accounts_models
from fleetup.core import audit
from fleetup.core.db import Base
from fleetup.fleet import models as fleet_models
from fleetup.upgrades import models as upgrades_models

metadata = Base.metadata

__all__ = ["accounts_models", "audit", "fleet_models", "metadata", "upgrades_models"]
