"""fleetup: runs the upgrade of a fleet of customer machines, following the operator's SOP."""

__version__ = "0.1.0"
