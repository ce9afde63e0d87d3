"""Machinery shared by the agent's public modules; not part of its public face."""
