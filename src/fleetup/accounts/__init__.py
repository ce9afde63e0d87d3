"""The people who use fleetup and the API tokens their scripts hold."""
