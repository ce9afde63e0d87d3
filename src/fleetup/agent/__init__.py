"""fleetup's IPC agent: the automated half of the upgrade SOP, run on each machine.

It backs up the customer's data (and verifies it), downloads the new IPC program verified by
TUF metadata, installs it into a versioned folder switched by one atomic rename, writes the
new cloud connection settings, registers with the new platform, runs the function test and
rolls back automatically when a step fails; each step is journalled before it runs and
reported to the fleetup server. It imports nothing else of fleetup and needs only the
standard library, httpx, python-tuf and zstandard, on Linux and Windows.

Public modules: :mod:`~fleetup.agent.config`, :mod:`~fleetup.agent.transport`,
:mod:`~fleetup.agent.journal`, :mod:`~fleetup.agent.backup`, :mod:`~fleetup.agent.download`,
:mod:`~fleetup.agent.install`, :mod:`~fleetup.agent.network`, :mod:`~fleetup.agent.register`,
:mod:`~fleetup.agent.selftest`, :mod:`~fleetup.agent.runner`, :mod:`~fleetup.agent.heartbeat`,
:mod:`~fleetup.agent.cli`; errors in :mod:`~fleetup.agent.errors`. The protocol and the
package format are in ``docs/agent.md``.
"""

from fleetup.agent.errors import AgentError

__all__ = ["AgentError"]
