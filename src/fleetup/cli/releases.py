"""``fleetup release ...``, ``fleetup keys ...`` and ``fleetup device ...``."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from fleetup.cli.common import cli_context, cli_session, console, errors, refused, settings
from fleetup.core.errors import FleetupError
from fleetup.devices import service as devices
from fleetup.releases import service as releases


def register(app: typer.Typer) -> None:
    release_app = typer.Typer(help="Releases of the IPC program.", no_args_is_help=True)
    keys_app = typer.Typer(help="The TUF keys that sign releases.", no_args_is_help=True)
    device_app = typer.Typer(help="The machines' IPCs.", no_args_is_help=True)
    app.add_typer(release_app, name="release")
    app.add_typer(keys_app, name="keys")
    app.add_typer(device_app, name="device")

    @release_app.command("add")
    def release_add(
        path: Path,
        version: str = typer.Option(..., help="Must equal the version in manifest.json."),
    ) -> None:
        """Check a package, store it and sign it for the agents."""
        config = settings()
        try:
            with cli_context(config) as ctx:
                release = releases.add(ctx, config, path=path, version=version)
        except FleetupError as error:
            raise refused(error) from error
        console.print(
            f"Added release {release.version}: target {release.target}, "
            f"{release.length} bytes, sha256 {release.sha256}"
        )

    @release_app.command("list")
    def release_list() -> None:
        """The releases, oldest first."""
        with cli_session(settings()) as session:
            table = Table("version", "target", "bytes", "sha256", "added")
            for release in releases.get_all(session):
                table.add_row(
                    release.version,
                    release.target,
                    str(release.length),
                    release.sha256[:16],
                    release.created_at.strftime("%Y-%m-%d %H:%M"),
                )
        console.print(table)

    @keys_app.command("show")
    def keys_show() -> None:
        """Key ids, version and expiry of each TUF role, and where its key lives."""
        repository = releases.tuf_repository(settings())
        if not repository.initialized:
            console.print("No TUF repository yet: it is made with the first `release add`.")
            return
        table = Table("role", "key ids", "version", "expires")
        for info in repository.roles():
            table.add_row(
                info.role,
                ", ".join(keyid[:16] for keyid in info.keyids),
                str(info.version),
                info.expires.strftime("%Y-%m-%d %H:%M UTC"),
            )
        console.print(table)
        console.print(f"Online keys: {repository.online_key_dir}", soft_wrap=True)
        console.print(f"Root key (keep offline): {repository.offline_key_dir}", soft_wrap=True)

    @keys_app.command("rotate")
    def keys_rotate(role: str) -> None:
        """Replace a role's key; the new root is signed by the old and the new root keys."""
        repository = releases.tuf_repository(settings())
        try:
            keyid = repository.rotate(role, datetime.now(UTC))
        except FleetupError as error:
            raise refused(error) from error
        console.print(
            f"New {role} key {keyid}; root is now version {repository.roles()[0].version}"
        )

    @keys_app.command("export-root")
    def keys_export_root(destination: Path) -> None:
        """Write root version 1, the trust anchor to install with each agent."""
        repository = releases.tuf_repository(settings())
        if not repository.initialized:
            errors.print("[red]No TUF repository yet: add a release first.[/red]")
            raise typer.Exit(1)
        shutil.copyfile(repository.metadata_dir / "1.root.json", destination)
        console.print(f"Wrote {destination}")

    @device_app.command("enroll-token")
    def enroll_token(serial: str) -> None:
        """Make a one-time enrollment token for the IPC of machine SERIAL (shown once)."""
        try:
            with cli_context(settings()) as ctx:
                token = devices.create_enrollment_token(ctx, serial=serial)
        except FleetupError as error:
            raise refused(error) from error
        console.print(f"Enrollment token for {serial} (shown once, valid 7 days): {token}")

    @device_app.command("revoke")
    def device_revoke(serial: str) -> None:
        """Refuse the credential of machine SERIAL's IPC from now on (403)."""
        try:
            with cli_context(settings()) as ctx:
                devices.revoke(ctx, serial=serial)
        except FleetupError as error:
            raise refused(error) from error
        console.print(f"The IPC of {serial} is revoked; enroll it again with a new token.")
