"""The HTTP faces of fleetup: the REST API (/api/v1) and, later, the device API (/device/v1)."""
