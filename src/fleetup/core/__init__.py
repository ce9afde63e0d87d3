"""Foundations every domain stands on: configuration, database, clock, security, i18n, audit."""
