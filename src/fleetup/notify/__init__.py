"""Notifications: the transactional outbox, delivery through Apprise, MQTT device wake-ups."""
