"""The agent's errors, in one tree.

Every failure the agent can meet is one of these; errors from outside (httpx, tuf, tarfile,
subprocess, the filesystem) are converted where they enter, with ``raise ... from e``, so the
runner and the CLI only ever handle this tree::

    AgentError                      anything the agent reports instead of crashing
    ├── ConfigError                 the TOML config is missing or wrong (names the field)
    ├── ServerError                 talking to the fleetup server failed
    │   ├── ServerUnreachable       neither primary nor fallback link answered (transient)
    │   └── ServerRejected          the server answered with an error status
    │       └── NotEnrolled         401, or a refused enrollment: no valid credential
    ├── JournalError                the journal cannot be read or written
    │   └── StateLoopError          one state was entered more often than the cap allows
    ├── BackupError                 archiving, verifying or uploading the data failed
    │   └── BackupCorrupt           an archive does not match its manifest
    ├── DownloadError               the release could not be fetched
    │   ├── DownloadInterrupted     network trouble; resumable, try again later (transient)
    │   └── DownloadRefused         TUF refused it: tampered, older, expired or unsigned
    ├── InstallError                the package could not be installed
    │   ├── PackageRejected         bad archive, manifest or path traversal entry
    │   └── HookFailed              a package hook exited non-zero or timed out
    ├── NetworkCheckFailed          no link of the new cloud platform answered
    ├── RegistrationError           the credential exchange with the new platform failed
    └── SelfTestFailed              a function-test command failed or timed out

``transient`` errors leave the journal where it is, so the next run resumes the same step;
the others end the step as failed (with rollback once anything was changed).
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""

    transient = False


class ConfigError(AgentError):
    """The configuration file is missing or wrong.

    Args:
        field: dotted name of the offending field, e.g. ``server.primary_url``.
        problem: what is wrong and what to do, for the person on site.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"config field '{field}': {problem}")


class ServerError(AgentError):
    """Talking to the fleetup server failed."""


class ServerUnreachable(ServerError):
    """Neither the primary nor the fallback link answered."""

    transient = True


class ServerRejected(ServerError):
    """The server answered with an error status.

    Args:
        status: the HTTP status code.
        detail: the start of the response body.
    """

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"server answered {status}: {detail}")


class NotEnrolled(ServerRejected):
    """The device has no valid credential: the server answered 401, or refused its enrollment
    token (403: spent, expired or another serial's).

    A 403 to an enrolled device is not this: its credential is valid, and it asked for an
    action or a backup that is not its own (``ServerRejected``).
    """


class JournalError(AgentError):
    """The journal cannot be read or written."""


class StateLoopError(JournalError):
    """A state was entered more often than the configured cap."""


class BackupError(AgentError):
    """Archiving, verifying or uploading the customer's data failed."""


class BackupCorrupt(BackupError):
    """An archive does not match its manifest (missing, extra or changed files)."""


class DownloadError(AgentError):
    """The release could not be downloaded."""


class DownloadInterrupted(DownloadError):
    """The download was cut; what arrived is kept and the next try resumes."""

    transient = True


class DownloadRefused(DownloadError):
    """TUF refused the metadata or the target.

    Args:
        reason: one of ``tampered``, ``rollback``, ``expired``, ``unsigned``, ``unknown_target``,
            ``mismatch`` (the action and the signed metadata disagree) or ``invalid``.
        detail: the underlying message.
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"download refused ({reason}): {detail}")


class InstallError(AgentError):
    """The package could not be installed."""


class PackageRejected(InstallError):
    """The package archive or its manifest is not acceptable."""


class HookFailed(InstallError):
    """A package hook exited non-zero or ran past its timeout.

    Args:
        hook: the hook phase (``pre_install``, ``migrate_data``).
        command: the command that failed.
        returncode: its exit code, or ``None`` when it timed out.
        output_tail: the last lines of its output.
    """

    def __init__(
        self, hook: str, command: list[str], returncode: int | None, output_tail: str
    ) -> None:
        self.hook = hook
        self.command = command
        self.returncode = returncode
        self.output_tail = output_tail
        how = "timed out" if returncode is None else f"exited {returncode}"
        super().__init__(f"{hook} hook {command!r} {how}")


class NetworkCheckFailed(AgentError):
    """No link of the new cloud platform answered its health check."""


class RegistrationError(AgentError):
    """The credential exchange with the new platform failed."""


class SelfTestFailed(AgentError):
    """A function-test command failed or timed out.

    Args:
        command: the command that failed.
        returncode: its exit code, or ``None`` when it timed out.
        output_tail: the last lines of its output.
    """

    def __init__(self, command: list[str], returncode: int | None, output_tail: str) -> None:
        self.command = command
        self.returncode = returncode
        self.output_tail = output_tail
        how = "timed out" if returncode is None else f"exited {returncode}"
        super().__init__(f"self-test {command!r} {how}")
